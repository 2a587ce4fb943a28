"""Distinguished names: CA names of the IGC-Santé model and holder subjects (cps.md §3)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from pki.domain.errors import ProfileViolation
from pki.domain.extensions import CardType

# Upper bounds of RFC 5280 Appendix A where it has them; our policy (64) for SN/GN.
MAX_LENGTHS: dict[str, int] = {
    "national_id": 64,
    "surname": 64,
    "given_name": 64,
    "title": 64,
    "organisation": 64,
    "organisation_unit": 64,
    "state": 128,
    "email": 128,
}
_NATIONAL_ID = re.compile(r"[0-9][0-9A-Za-z]{1,20}(/[0-9A-Za-z]{1,40})?")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


@dataclass(frozen=True, slots=True)
class Holder:
    """Identity data of a card holder, snapshot at issuance."""

    national_id: str
    surname: str
    given_name: str
    title: str
    card_serial: str
    profession_code: int | None = None
    card_type: CardType = CardType.CPS
    email: str | None = None
    # CPE/CPA variant: establishment staff
    organisation: str | None = None
    organisation_unit: str | None = None
    state: str | None = None

    @property
    def is_establishment_staff(self) -> bool:
        """CPE/CDE/CPA/CDA cards carry the organisation in their subject."""
        return self.card_type in (CardType.CPE, CardType.CPA)


def _check_text(field: str, value: str | None, *, required: bool) -> None:
    if value is None or value == "":
        if required:
            raise ProfileViolation(f"holder.{field}", f"the holder field {field!r} is required")
        return
    limit = MAX_LENGTHS[field]
    if len(value) > limit:
        raise ProfileViolation(
            f"holder.{field}.max_length",
            f"the holder field {field!r} has {len(value)} characters; at most {limit} allowed",
        )
    if any(ord(c) < 0x20 for c in value):
        raise ProfileViolation(f"holder.{field}", f"the holder field {field!r} has control chars")


def validate_holder(holder: Holder, *, needs_email: bool = False) -> None:
    """Check every field a holder subject needs; raise :class:`ProfileViolation` naming the rule."""
    _check_text("national_id", holder.national_id, required=True)
    if _NATIONAL_ID.fullmatch(holder.national_id) is None:
        raise ProfileViolation(
            "holder.national_id.format",
            "the national identifier must be a prefix digit followed by the identifier",
        )
    _check_text("surname", holder.surname, required=True)
    _check_text("given_name", holder.given_name, required=True)
    _check_text("title", holder.title, required=True)
    _check_text("email", holder.email, required=needs_email)
    if holder.email and _EMAIL.fullmatch(holder.email) is None:
        raise ProfileViolation("holder.email.format", "the e-mail address is not valid")
    if holder.is_establishment_staff:
        _check_text("organisation", holder.organisation, required=True)
        _check_text("organisation_unit", holder.organisation_unit, required=True)
        _check_text("state", holder.state, required=True)


def holder_subject(holder: Holder) -> x509.Name:
    """Subject of a card certificate.

    CPS: ``C=FR, title=<profession>, CN=<national id>+SN=<surname>+GN=<given name>``;
    CPE/CPA: ``C=FR, ST, O, OU, title, GN+CN+SN`` (the encoder sorts the multi-valued RDN).
    """
    rdns = [x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")])]
    if holder.is_establishment_staff:
        for oid, value in (
            (NameOID.STATE_OR_PROVINCE_NAME, holder.state or ""),
            (NameOID.ORGANIZATION_NAME, holder.organisation or ""),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, holder.organisation_unit or ""),
        ):
            rdns.append(x509.RelativeDistinguishedName([x509.NameAttribute(oid, value)]))
    rdns.append(x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.TITLE, holder.title)]))
    rdns.append(
        x509.RelativeDistinguishedName(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, holder.national_id),
                x509.NameAttribute(NameOID.SURNAME, holder.surname),
                x509.NameAttribute(NameOID.GIVEN_NAME, holder.given_name),
            ]
        )
    )
    return x509.Name(rdns)


def ca_name(
    *, common_name: str, organisation: str, organisation_units: tuple[str, ...]
) -> x509.Name:
    """A CA DN: ``C=FR, O=<org>, OU=<each unit>, CN=<name>`` in that order."""
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
    ]
    attrs += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in organisation_units]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def technical_subject(*, common_name: str, organisation: str) -> x509.Name:
    """Subject of an OCSP responder or station client certificate."""
    if not common_name or len(common_name) > 64:
        raise ProfileViolation("subject.common_name.max_length", "CN must be 1..64 characters")
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
