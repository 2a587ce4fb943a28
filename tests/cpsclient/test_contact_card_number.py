"""``contact-auth`` names the card by the certificate's CPS card number extension: OpenSC's
token serial is the card number cut to PKCS#11's 16 characters."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from cpsclient.contact import card_number_of
from pki.domain import extensions
from tests.pki.keys_pool import rsa_key


def _certificate(*extra: x509.ExtensionType) -> x509.Certificate:
    key = rsa_key("holder1")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "810002813839")])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
    )
    for extension in extra:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(key, hashes.SHA256())


def test_card_number_from_the_certificate():
    cert = _certificate(extensions.card_number("0483250175"))
    number = card_number_of(cert, token_serial="0000010483250175")
    assert number == "80250000010483250175"


def test_token_serial_without_the_extension():
    assert card_number_of(_certificate(), token_serial="0000010483250175") == "0000010483250175"
