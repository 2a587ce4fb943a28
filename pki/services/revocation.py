"""Revocation and hold: each locks the certificate (and share-locks its CA against a CRL being
cut), re-reads it, stores its new CRL entry, audits and pre-signs its OCSP answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from django.db import connection, transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import AuditEntry, audit_event_create, audit_events_create
from core.errors import BadInput, Conflict, NotFound
from pki import authorities
from pki.choices import CertificateStatus
from pki.domain.reasons import REVOKE_REASONS, RevocationReason
from pki.models import Certificate, CertificateAuthority, OcspResponse
from pki.services.ocsp import ocsp_presign
from pki.services.rows import certificate_crl_entry


def _locked_certificate(certificate_id: int) -> tuple[Certificate, authorities.AuthorityContext]:
    try:
        issuer_id = Certificate.objects.values_list("issuer_id", flat=True).get(pk=certificate_id)
    except Certificate.DoesNotExist:
        raise NotFound(f"no certificate #{certificate_id}") from None
    ca = authorities.authority_lock_shared(pk=issuer_id)
    return Certificate.objects.select_for_update().get(pk=certificate_id), ca


def _audit_status(cert: Certificate, actor: Actor, action: str, **details: object) -> None:
    audit_event_create(
        actor=actor,
        action=action,
        object_type="pki.certificate",
        object_id=str(cert.pk),
        details={"serial": format(int(cert.serial), "x"), "status": cert.status, **details},
    )


def _certificate_status_set(
    certificate_id: int,
    *,
    status: CertificateStatus,
    stamp: str,
    actor: Actor,
    action: str,
    refusal: Callable[[Certificate], str],
    changes: Mapping[str, object] | None = None,
    details: Mapping[str, object] | None = None,
) -> Certificate:
    """Move one certificate to ``status`` in the caller's transaction: lock and re-read it, refuse
    a revoked one (``refusal`` says why), return early if it already has the status, then save
    ``stamp`` (the field receiving the time), ``changes`` and its CRL entry, audit ``action`` with
    ``details`` and pre-sign its OCSP answer."""
    cert, ca = _locked_certificate(certificate_id)
    if cert.status == CertificateStatus.REVOKED:
        raise Conflict(f"certificate {int(cert.serial):x} {refusal(cert)}")
    if cert.status == status:
        return cert
    changes = changes or {}
    now = timezone.now()
    cert.status = status
    setattr(cert, stamp, now)
    for name, value in changes.items():
        setattr(cert, name, value)
    cert.status_changed_at = now
    cert.crl_entry = certificate_crl_entry(cert)
    cert.save(update_fields=["status", stamp, *changes, "status_changed_at", "crl_entry"])
    _audit_status(cert, actor, action, **(details or {}))
    ocsp_presign([cert], ca, now)
    return cert


def _already_revoked(cert: Certificate) -> str:
    return f"is already revoked ({cert.revocation_reason})"


def _revoked_cannot_be_held(cert: Certificate) -> str:
    return "is revoked; it cannot be put on hold"


def _revoked_cannot_be_released(cert: Certificate) -> str:
    return "is revoked; it cannot be released"


@transaction.atomic
def certificate_revoke(
    *, certificate_id: int, reason: RevocationReason, actor: Actor
) -> Certificate:
    """Revoke for good. Revoking a revoked certificate is refused (409)."""
    if reason not in REVOKE_REASONS:
        raise BadInput(f"{reason.value} is not a revocation reason; use hold/release for holds")
    return _certificate_status_set(
        certificate_id,
        status=CertificateStatus.REVOKED,
        stamp="revoked_at",
        actor=actor,
        action="pki.certificate_revoke",
        refusal=_already_revoked,
        changes={"revocation_reason": reason.value},
        details={"reason": reason.value},
    )


# What a bulk revocation reads of each certificate (not its DER nor its holder snapshot).
_STATUS_FIELDS = (
    "pk", "issuer_id", "serial", "status", "revoked_at", "revocation_reason", "hold_since",
)  # fmt: skip


@transaction.atomic
def certificates_revoke(
    *, certificate_ids: Sequence[int], reason: RevocationReason, actor: Actor
) -> list[Certificate]:
    """Revoke many certificates for good, set-based (a bulk revocation's batch): lock them in key
    order and share-lock their CAs, skip those already revoked (never revoked twice), then one
    UPDATE stores every new status with its CRL entry, one chain extension appends a
    ``pki.certificate_revoke`` event per certificate (the details :func:`certificate_revoke`
    writes) and each CA's answers are pre-signed and upserted together. Returns the certificates
    it revoked, in key order."""
    if reason not in REVOKE_REASONS:
        raise BadInput(f"{reason.value} is not a revocation reason; use hold/release for holds")
    if not certificate_ids:
        return []
    issuers = sorted(
        set(Certificate.objects.filter(pk__in=certificate_ids).values_list("issuer_id", flat=True))
    )
    cas = {pk: authorities.authority_lock_shared(pk=pk) for pk in issuers}
    certs = [
        cert
        for cert in Certificate.objects.select_for_update()
        .filter(pk__in=certificate_ids)
        .only(*_STATUS_FIELDS)
        .order_by("pk")
        if cert.status != CertificateStatus.REVOKED
    ]
    if not certs:
        return []
    now = timezone.now()
    for cert in certs:
        cert.status = CertificateStatus.REVOKED
        cert.revoked_at = now
        cert.revocation_reason = reason.value
        cert.status_changed_at = now
        cert.crl_entry = certificate_crl_entry(cert)
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE pki_certificate AS c SET status = %s, revoked_at = %s, "
            "revocation_reason = %s, status_changed_at = %s, crl_entry = v.entry "
            "FROM unnest(%s::bigint[], %s::bytea[]) AS v(id, entry) WHERE c.id = v.id",
            [
                CertificateStatus.REVOKED.value,
                now,
                reason.value,
                now,
                [cert.pk for cert in certs],
                [cert.crl_entry for cert in certs],
            ],
        )
    audit_events_create(
        [
            AuditEntry(
                actor=actor,
                action="pki.certificate_revoke",
                object_type="pki.certificate",
                object_id=str(cert.pk),
                details={
                    "serial": format(int(cert.serial), "x"),
                    "status": cert.status,
                    "reason": reason.value,
                },
            )
            for cert in certs
        ]
    )
    by_issuer: dict[int, list[Certificate]] = {}
    for cert in certs:
        by_issuer.setdefault(cert.issuer_id, []).append(cert)
    for issuer_id, group in by_issuer.items():
        ocsp_presign(group, cas[issuer_id], now)
    return certs


@transaction.atomic
def certificate_hold(*, certificate_id: int, actor: Actor) -> Certificate:
    """Suspend (certificateHold). Holding a held certificate is a no-op."""
    return _certificate_status_set(
        certificate_id,
        status=CertificateStatus.ON_HOLD,
        stamp="hold_since",
        actor=actor,
        action="pki.certificate_hold",
        refusal=_revoked_cannot_be_held,
    )


@transaction.atomic
def certificate_release_hold(*, certificate_id: int, actor: Actor) -> Certificate:
    """Lift a hold (removeFromCRL in the next delta). Releasing a valid one is a no-op."""
    return _certificate_status_set(
        certificate_id,
        status=CertificateStatus.VALID,
        stamp="released_at",
        actor=actor,
        action="pki.certificate_release_hold",
        refusal=_revoked_cannot_be_released,
    )


@transaction.atomic
def authority_revoke(
    *, authority: str, reason: RevocationReason, actor: Actor, officers: Sequence[str] = ()
) -> Certificate:
    """Revoke an issuing CA: its certificate row under its parent is revoked (CRL entry stored,
    the parent's OCSP answer signed when the parent has a responder), audited as
    ``pki.authority_revoke``. The parent's next CRL lists it; the caller has it published
    (``authority_parent_crls_publish``, a signing worker or a command). Two people decided it:
    the dual-control act or ``pki_revoke_ca`` with two officers (``officers``)."""
    if reason not in REVOKE_REASONS:
        raise BadInput(f"{reason.value} is not a revocation reason")
    try:
        ca = CertificateAuthority.objects.select_for_update().get(short_name=authority)
    except CertificateAuthority.DoesNotExist:
        raise NotFound(f"no certificate authority {authority!r}") from None
    if ca.parent_id is None or ca.certificate_id is None:
        raise Conflict(
            f"{authority} is a root: no CRL can list it; withdraw it from the relying parties' "
            "trust stores instead"
        )
    cert = certificate_revoke(certificate_id=ca.certificate_id, reason=reason, actor=actor)
    # A revoked CA issues nothing more and its responder stops vouching for its leaves: no
    # profile, no responder (the context stamp changes, so every process sees it at once), no
    # pre-signed answer (a relying party asking about a leaf gets "unauthorized", never "good").
    responder_serial = format(int(ca.ocsp_responder.serial), "x") if ca.ocsp_responder else ""
    ca.profiles = []
    ca.ocsp_responder = None
    ca.ocsp_key_handle = ""
    ca.save(update_fields=["profiles", "ocsp_responder", "ocsp_key_handle"])
    OcspResponse.objects.filter(authority=ca).delete()
    audit_event_create(
        actor=actor,
        action="pki.authority_revoke",
        object_type="pki.authority",
        object_id=str(ca.pk),
        details={
            "short_name": ca.short_name,
            "serial": format(int(cert.serial), "x"),
            "reason": reason.value,
            "responder_withdrawn": responder_serial,
            **({"officers": list(officers)} if officers else {}),
        },
    )
    return cert
