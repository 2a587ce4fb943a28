"""The GIP-CPS private extensions under 1.2.250.1.71.1.2 (reference/cps.md §3).

Values are hand-encoded DER, byte for byte as in the public ANS test card certificate.
"""

from __future__ import annotations

import enum
import re

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from pki.domain import der
from pki.domain.errors import ProfileViolation

GIP_CPS_ARC = "1.2.250.1.71.1.2"
OID_CARD_TYPE = ObjectIdentifier(f"{GIP_CPS_ARC}.2")
OID_CARD_NUMBER = ObjectIdentifier(f"{GIP_CPS_ARC}.3")
OID_PRODUCT_CATEGORY = ObjectIdentifier(f"{GIP_CPS_ARC}.5")
OID_PROFESSION = ObjectIdentifier(f"{GIP_CPS_ARC}.7")

ANS_ISSUER_NUMBER = "8025000001"
_CARD_SERIAL = re.compile(r"[0-9]{10}")


class ProductCategory(enum.IntEnum):
    """TRE_G01: what carries the key."""

    CARD = 0x00
    SOFTWARE = 0x03
    TEST_CARD = 0x80
    TEST_SOFTWARE = 0x83


class CardType(enum.IntEnum):
    """On-card type code (TRE_R87)."""

    CPS = 0
    CPF = 1
    CPE = 2
    CPA = 3
    CSA = 4


def product_category(category: ProductCategory) -> x509.UnrecognizedExtension:
    """``.5``: OCTET STRING of one byte."""
    return x509.UnrecognizedExtension(
        OID_PRODUCT_CATEGORY, der.encode_octet_string(bytes([category.value]))
    )


def card_type(value: CardType) -> x509.UnrecognizedExtension:
    """``.2``: INTEGER."""
    return x509.UnrecognizedExtension(OID_CARD_TYPE, der.encode_integer(value.value))


def card_number(card_serial: str) -> x509.UnrecognizedExtension:
    """``.3``: PrintableString ``8025000001/<10-digit card serial>``."""
    if _CARD_SERIAL.fullmatch(card_serial) is None:
        raise ProfileViolation("holder.card_serial", "the card serial must be exactly 10 digits")
    value = f"{ANS_ISSUER_NUMBER}/{card_serial}"
    return x509.UnrecognizedExtension(OID_CARD_NUMBER, der.encode_printable_string(value))


def profession(code: int) -> x509.UnrecognizedExtension:
    """``.7``: INTEGER profession code (TRE_G15)."""
    if not 0 <= code <= 999:
        raise ProfileViolation("holder.profession_code", "the profession code must be 0..999")
    return x509.UnrecognizedExtension(OID_PROFESSION, der.encode_integer(code))
