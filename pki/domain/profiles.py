"""Certificate profiles as frozen data, and the rules a request must meet."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from pki.domain.errors import ProfileViolation
from pki.domain.names import Holder, validate_holder

MS_SMARTCARD_LOGON = ObjectIdentifier("1.3.6.1.4.1.311.20.2.2")
MS_UPN = ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
UPN_DOMAIN = "carte-cps.fr"
# [I] Extended key usage of the contactless status signer (the signed deny list, ADR 0021): a
# relying party pins this usage, so no other certificate of the technical CA can sign a list.
# An arc of our own choosing (no public OID is known for it); replace it with the agency's.
CONTACTLESS_STATUS_SIGNING = ObjectIdentifier("1.2.250.1.213.1.7.99.1")


class SanKind(enum.StrEnum):
    NONE = "none"
    UPN = "upn"
    EMAIL = "email"


@dataclass(frozen=True, slots=True)
class Profile:
    """What a certificate of one kind must look like."""

    name: str
    rsa_key_sizes: frozenset[int]
    validity_days: int
    key_usage: frozenset[str]
    extended_key_usages: tuple[ObjectIdentifier, ...] = ()
    is_ca: bool = False
    path_length: int | None = None
    holder_required: bool = False
    san: SanKind = SanKind.NONE
    private_extensions: bool = False
    private_key_usage_period: bool = False
    ocsp_nocheck: bool = False
    revocation_pointers: bool = True
    validity_years: int | None = None

    def with_key_sizes(self, sizes: frozenset[int]) -> Profile:
        """A copy accepting other RSA sizes (test hierarchies use small CA keys)."""
        return dataclasses.replace(self, rsa_key_sizes=sizes)


_CA_KU = frozenset({"key_cert_sign", "crl_sign"})

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="ca_root",
            rsa_key_sizes=frozenset({4096}),
            validity_days=20 * 365,
            key_usage=_CA_KU,
            is_ca=True,
            revocation_pointers=False,
        ),
        Profile(
            name="ca_issuing",
            rsa_key_sizes=frozenset({3072, 4096}),
            validity_days=10 * 365,
            key_usage=_CA_KU,
            is_ca=True,
            path_length=0,
        ),
        Profile(
            name="cps_auth",
            rsa_key_sizes=frozenset({2048}),
            validity_days=3 * 365,
            validity_years=3,
            key_usage=frozenset({"digital_signature"}),
            extended_key_usages=(ExtendedKeyUsageOID.CLIENT_AUTH, MS_SMARTCARD_LOGON),
            holder_required=True,
            san=SanKind.UPN,
            private_extensions=True,
        ),
        Profile(
            name="cps_sign",
            rsa_key_sizes=frozenset({2048}),
            validity_days=3 * 365,
            validity_years=3,
            key_usage=frozenset({"content_commitment"}),
            extended_key_usages=(ExtendedKeyUsageOID.EMAIL_PROTECTION,),
            holder_required=True,
            san=SanKind.EMAIL,
            private_extensions=True,
            private_key_usage_period=True,
        ),
        Profile(
            name="ocsp_responder",
            rsa_key_sizes=frozenset({2048, 3072}),
            validity_days=90,
            key_usage=frozenset({"digital_signature"}),
            extended_key_usages=(ExtendedKeyUsageOID.OCSP_SIGNING,),
            ocsp_nocheck=True,
            revocation_pointers=False,
        ),
        Profile(
            name="contactless_status",
            rsa_key_sizes=frozenset({2048, 3072}),
            validity_days=365,
            key_usage=frozenset({"digital_signature"}),
            extended_key_usages=(CONTACTLESS_STATUS_SIGNING,),
        ),
        Profile(
            name="station_client",
            rsa_key_sizes=frozenset({2048, 3072}),
            validity_days=2 * 365,
            key_usage=frozenset({"digital_signature"}),
            extended_key_usages=(ExtendedKeyUsageOID.CLIENT_AUTH,),
        ),
    )
}


def profile_get(name: str) -> Profile:
    """The profile called ``name``; an unknown name is a :class:`ProfileViolation`."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ProfileViolation(
            "profile.known", f"unknown profile {name!r}; known: {known}"
        ) from None


def validate_request(
    profile: Profile,
    *,
    public_key: object,
    holder: Holder | None,
    not_after: dt.datetime,
    issuer_not_after: dt.datetime | None,
) -> None:
    """Check a request against its profile; raise :class:`ProfileViolation` naming the rule."""
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ProfileViolation("key.type", f"profile {profile.name} accepts RSA keys only")
    if public_key.key_size not in profile.rsa_key_sizes:
        sizes = "/".join(str(s) for s in sorted(profile.rsa_key_sizes))
        raise ProfileViolation(
            "key.size",
            f"profile {profile.name} accepts RSA-{sizes}, got RSA-{public_key.key_size}",
        )
    if public_key.public_numbers().e != 65537:
        raise ProfileViolation("key.exponent", "the RSA public exponent must be 65537")
    if profile.holder_required:
        if holder is None:
            raise ProfileViolation("holder.required", f"profile {profile.name} needs holder data")
        validate_holder(holder, needs_email=profile.san is SanKind.EMAIL)
        if profile.san is SanKind.UPN and len(holder.national_id) + 1 + len(UPN_DOMAIN) > 256:
            raise ProfileViolation("san.upn.max_length", "the UPN would be too long")
    if issuer_not_after is not None and not_after > issuer_not_after:
        raise ProfileViolation(
            "validity.within_issuer", "the certificate would outlive its issuing CA certificate"
        )


def validate_profiles() -> None:
    """Start-up self check of the profile table (a mistake here must stop the process)."""
    for name, profile in PROFILES.items():
        if name != profile.name:
            raise ProfileViolation("profiles.table", f"profile key {name} != {profile.name}")
        if profile.is_ca != bool(profile.key_usage & {"key_cert_sign"}):
            raise ProfileViolation("profiles.table", f"{name}: CA flag and keyCertSign disagree")
        if profile.ocsp_nocheck and ExtendedKeyUsageOID.OCSP_SIGNING not in (
            profile.extended_key_usages
        ):
            raise ProfileViolation("profiles.table", f"{name}: ocsp-nocheck without OCSPSigning")
