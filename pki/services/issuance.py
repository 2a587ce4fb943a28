"""Issuing a certificate: one transaction, one commit for the row, its audit event and its
pre-signed OCSP answer."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from django.db import connection, transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_event_create
from core.errors import BadInput
from pki import authorities
from pki.choices import CertificateStatus
from pki.domain import builders, names
from pki.domain.errors import ProfileViolation
from pki.domain.profiles import Profile, profile_get
from pki.models import Certificate
from pki.services.errors import translated
from pki.services.ocsp import ocsp_answer_for
from pki.services.rows import certificate_row_insert


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What a certificate request checked before any lock: its profile, key and subject."""

    prof: Profile
    key: CertificatePublicKeyTypes
    subject: x509.Name | None  # None: a technical subject named under the CA's organisation
    subject_cn: str


@dataclass(frozen=True, slots=True)
class KeyToCertify:
    """One public key of a holder to certify (``certificates_issue_on_hold``)."""

    authority: str
    profile: str
    public_key: rsa.RSAPublicKey


def certificate_issue(
    *,
    authority: str,
    profile: str,
    actor: Actor,
    public_key: rsa.RSAPublicKey | None = None,
    csr: bytes | None = None,
    holder: names.Holder | None = None,
    common_name: str | None = None,
    on_hold: bool = False,
    savepoint: bool = True,
) -> Certificate:
    """Issue a certificate from a public key (on-card generation) or from a CSR.

    ``on_hold=True`` issues it already suspended (certificateHold) until activation. One
    transaction, one commit: the row, its audit event and its pre-signed OCSP answer.
    ``savepoint=False`` when called inside an atomic block that lets every error of this call
    leave it (nothing catches it and goes on with the transaction): no savepoint of its own,
    two statements fewer (ADR 0034); an error then rolls back to the caller's nearest savepoint.
    """
    if (public_key is None) == (csr is None):
        raise BadInput("give exactly one of a public key or a CSR")
    with translated():
        prepared = _prepare(profile, public_key, csr, holder, common_name)
        with transaction.atomic(savepoint=savepoint):
            # One query: the share lock (a CRL sees this row entirely or not at all) also reads
            # the stamp that validates the per-process CA context.
            ca = authorities.authority_lock_shared(short_name=authority)
            return _issue_locked(ca, prepared, actor, holder, on_hold, from_csr=csr is not None)


def certificates_issue_on_hold(
    *, keys: Sequence[KeyToCertify], holder: names.Holder, actor: Actor
) -> list[Certificate]:
    """Certify several public keys of one holder, each on hold (a card's key pairs), in the
    caller's atomic block, which lets every error leave it (no savepoint: ADR 0034): each CA
    share-locked once for all its certificates (the lock is held to the transaction's end
    either way), every certificate as ``certificate_issue`` issues it, in order."""
    if not connection.in_atomic_block:
        raise RuntimeError("certificates_issue_on_hold runs inside its caller's transaction")
    issued: list[Certificate] = []
    locked: dict[str, authorities.AuthorityContext] = {}
    with translated():
        for item in keys:
            prepared = _prepare(item.profile, item.public_key, None, holder, None)
            ca = locked.get(item.authority)
            if ca is None:
                ca = locked[item.authority] = authorities.authority_lock_shared(
                    short_name=item.authority
                )
            issued.append(_issue_locked(ca, prepared, actor, holder, True, from_csr=False))
    return issued


def _prepare(
    profile: str,
    public_key: rsa.RSAPublicKey | None,
    csr: bytes | None,
    holder: names.Holder | None,
    common_name: str | None,
) -> _Prepared:
    prof = profile_get(profile)
    if prof.name == "ocsp_responder":
        # a responder certificate can answer "good" for anything its CA issued: only the
        # responder installer (pki_init, renewal) makes one, with a key it generated itself
        raise ProfileViolation(
            "profile.responder_installer",
            "OCSP responder certificates come only from the responder installer",
        )
    request_subject: x509.Name | None = None
    key: CertificatePublicKeyTypes
    if csr is not None:
        request = builders.parse_csr(csr)
        key = request.public_key()
        request_subject = request.subject
    else:
        assert public_key is not None
        key = public_key
    subject_cn = ""
    if prof.holder_required:
        if holder is None:
            raise ProfileViolation("holder.required", f"profile {profile} needs holder data")
        names.validate_holder(holder, needs_email=prof.san.value == "email")
        subject: x509.Name | None = names.holder_subject(holder)
    else:
        cn = common_name
        if cn is None and request_subject is not None:
            found = request_subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
            cn = str(found[0].value) if found else None
        if not cn:
            raise ProfileViolation("subject.common_name", "a common name is required")
        subject = None
        subject_cn = cn
    return _Prepared(prof, key, subject, subject_cn)


def _issue_locked(
    ca: authorities.AuthorityContext,
    prepared: _Prepared,
    actor: Actor,
    holder: names.Holder | None,
    on_hold: bool,
    *,
    from_csr: bool,
) -> Certificate:
    """Sign and insert one certificate under the share lock of its CA (taken by the caller)."""
    prof = prepared.prof
    profile = prof.name
    if prof.name not in ca.profiles:
        raise ProfileViolation(
            "profile.offered_by_ca", f"CA {ca.short_name} does not issue profile {prof.name}"
        )
    subject = prepared.subject
    if subject is None:
        subject = names.technical_subject(
            common_name=prepared.subject_cn, organisation=ca.organisation
        )
    now = timezone.now()
    cert = builders.build_certificate(
        profile=prof,
        public_key=prepared.key,
        subject=subject,
        serial=builders.random_serial(secrets.token_bytes),
        now=now,
        issuer=ca.issuer(),
        holder=holder if prof.holder_required else None,
        policies=ca.policies_for(profile),
        category=ca.category,
    )
    # signed before the insert so that both rows go in back to back
    answer = ocsp_answer_for(
        ca,
        serial=cert.serial_number,
        status=CertificateStatus.ON_HOLD if on_hold else CertificateStatus.VALID,
        revoked_at=None,
        revocation_reason="",
        hold_since=now,
        now=now,
    )
    row = certificate_row_insert(
        ca_id=ca.pk,
        cert=cert,
        profile=profile,
        holder=holder,
        on_hold=on_hold,
        now=now,
        ocsp_answer=answer,
    )
    audit_event_create(
        actor=actor,
        action="pki.certificate_issue",
        object_type="pki.certificate",
        object_id=str(row.pk),
        details={
            "authority": ca.short_name,
            "profile": profile,
            "serial": format(cert.serial_number, "x"),
            "on_hold": on_hold,
            "from_csr": from_csr,
        },
    )
    return row
