"""Reads of the PKI app."""

from __future__ import annotations

import re
from decimal import Decimal

from django.db.models import QuerySet

from core.errors import BadInput, NotFound
from pki.choices import CrlKind
from pki.models import AuditAnchor, Certificate, CertificateAuthority, CrlPublication

_HEX = re.compile(r"(0x)?[0-9a-fA-F:]+")


def serial_parse(text: str) -> int:
    """A serial given in decimal, or in hex with ``0x`` or colons (as OpenSSL prints it)."""
    text = text.strip()
    if text.isdigit() and not text.startswith("0x"):
        return int(text)
    if _HEX.fullmatch(text):
        return int(text.removeprefix("0x").replace(":", ""), 16)
    raise BadInput(f"{text!r} is not a certificate serial (decimal, or hex with 0x or colons)")


def authority_get(*, short_name: str) -> CertificateAuthority:
    try:
        return CertificateAuthority.objects.get(short_name=short_name)
    except CertificateAuthority.DoesNotExist:
        raise NotFound(f"no certificate authority {short_name!r}") from None


def authority_certificate_der(*, short_name: str) -> bytes | None:
    """The DER certificate of a CA, ``None`` if there is no such CA (one column read)."""
    der = (
        CertificateAuthority.objects.filter(short_name=short_name)
        .values_list("certificate_der", flat=True)
        .first()
    )
    return None if der is None else bytes(der)


def authority_list() -> QuerySet[CertificateAuthority]:
    return CertificateAuthority.objects.order_by("id")


def certificate_get_by_serial(*, authority: str, serial: int) -> Certificate:
    try:
        return Certificate.objects.get(issuer__short_name=authority, serial=Decimal(serial))
    except Certificate.DoesNotExist:
        raise NotFound(f"no certificate with serial {serial:x} issued by {authority!r}") from None


def crl_latest(*, short_name: str, kind: CrlKind) -> CrlPublication | None:
    return (
        CrlPublication.objects.filter(authority__short_name=short_name, kind=kind)
        .order_by("-number")
        .first()
    )


def audit_anchor_latest() -> dict[str, object] | None:
    """The newest published audit anchor document, ``None`` before the first."""
    found = AuditAnchor.objects.order_by("-seq", "-pk").values_list("document", flat=True).first()
    return dict(found) if found is not None else None
