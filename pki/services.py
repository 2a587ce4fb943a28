"""Writes of the PKI app: each locks its rows, re-reads, audits in the same transaction."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_event_create
from core.errors import BadInput, Conflict, NotFound, PolicyViolation, ServiceUnavailable
from pki import authorities, selectors
from pki.choices import CaKind, CertificateStatus, CrlKind
from pki.domain import builders, crl_der, names
from pki.domain.errors import MalformedRequest, ProfileViolation
from pki.domain.profiles import PROFILES, Profile, profile_get
from pki.domain.reasons import REVOKE_REASONS, RevocationReason
from pki.fields import serial_param
from pki.hierarchy import AuthorityConfig, HierarchyConfig
from pki.key_backends import key_backend_get
from pki.keys.errors import KeyBackendError, KeyBackendUnavailable
from pki.models import Certificate, CertificateAuthority, CrlPublication, OcspResponse
from pki.responder import status_of


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Domain and backend errors become the application errors users see."""
    try:
        yield
    except ProfileViolation as exc:
        raise PolicyViolation(str(exc), extra={"rule": exc.rule}) from None
    except MalformedRequest as exc:
        raise BadInput(str(exc)) from None
    except KeyBackendUnavailable as exc:
        raise ServiceUnavailable(str(exc)) from None
    except KeyBackendError as exc:
        raise ServiceUnavailable(f"key backend error: {exc}") from None


def _issuer(ca: CertificateAuthority) -> builders.Issuer:
    return authorities.authority_context((ca.pk, ca.created_at, ca.ocsp_responder_id)).issuer()


def _holder_snapshot(holder: names.Holder | None) -> dict[str, object]:
    if holder is None:
        return {}
    data = dataclasses.asdict(holder)
    data["card_type"] = int(holder.card_type)
    return data


_CERT_COLUMNS = (
    "issuer_id",
    "serial",
    "profile",
    "status",
    "subject",
    "national_id",
    "holder",
    "not_before",
    "not_after",
    "der",
    "fingerprint_sha256",
    "revoked_at",
    "revocation_reason",
    "hold_since",
    "released_at",
    "status_changed_at",
    "crl_entry",
    "created_at",
)
_CERT_INSERT = (
    f"INSERT INTO pki_certificate ({', '.join(_CERT_COLUMNS)}) "  # noqa: S608 - constants only
    f"VALUES ({', '.join(['%s'] * len(_CERT_COLUMNS))}) RETURNING id"
)
_OCSP_INSERT = (
    "INSERT INTO pki_ocspresponse "
    "(certificate_id, authority_id, serial, status, this_update, next_update, der) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


def _store(
    *,
    ca_id: int,
    cert: x509.Certificate,
    profile: str,
    holder: names.Holder | None,
    on_hold: bool,
    now: dt.datetime,
    ocsp_answer: builders.OcspAnswer | None = None,
) -> Certificate:
    """Insert the row (and its first OCSP answer) with plain SQL: the ORM's per-save machinery
    was a third of the issuance time (docs/pki.md, "Issuance")."""
    der = cert.public_bytes(serialization.Encoding.DER)
    row = Certificate(
        issuer_id=ca_id,
        serial=Decimal(cert.serial_number),
        profile=profile,
        status=CertificateStatus.ON_HOLD if on_hold else CertificateStatus.VALID,
        subject=cert.subject.rfc4514_string(),
        national_id=holder.national_id if holder else "",
        holder=_holder_snapshot(holder),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        der=der,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        revocation_reason="",
        hold_since=now if on_hold else None,
        status_changed_at=now,
        created_at=now,
    )
    ops = connection.ops
    stamp = ops.adapt_datetimefield_value
    params = [
        ca_id,
        serial_param(row.serial, connection),
        row.profile,
        row.status,
        row.subject,
        row.national_id,
        json.dumps(row.holder),
        stamp(row.not_before),
        stamp(row.not_after),
        der,
        row.fingerprint_sha256,
        None,
        "",
        stamp(row.hold_since),
        None,
        stamp(now),
        _entry_of(row),
        stamp(now),
    ]
    with connection.cursor() as cur:
        cur.execute(_CERT_INSERT, params)
        fetched = cur.fetchone()
        assert fetched is not None
        row.pk = fetched[0]
        if ocsp_answer is not None:
            cur.execute(
                _OCSP_INSERT,
                [
                    row.pk,
                    ca_id,
                    params[1],
                    row.status,
                    stamp(ocsp_answer.this_update),
                    stamp(ocsp_answer.next_update),
                    ocsp_answer.der,
                ],
            )
    row._state.adding = False
    row._state.db = connection.alias
    return row


def _entry_of(cert: Certificate) -> bytes | None:
    """The CRL entry of a certificate in its current status (``None`` when not listed)."""
    if cert.status == CertificateStatus.REVOKED:
        assert cert.revoked_at is not None
        reason = _REASONS[cert.revocation_reason]
        return crl_der.crl_entry(int(cert.serial), cert.revoked_at, reason)
    if cert.status == CertificateStatus.ON_HOLD:
        assert cert.hold_since is not None
        hold = RevocationReason.CERTIFICATE_HOLD
        return crl_der.crl_entry(int(cert.serial), cert.hold_since, hold)
    return None


# --- issuance ---------------------------------------------------------------------------------


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
) -> Certificate:
    """Issue a certificate from a public key (on-card generation) or from a CSR.

    ``on_hold=True`` issues it already suspended (certificateHold) until activation. One
    transaction, one commit: the row, its audit event and its pre-signed OCSP answer.
    """
    if (public_key is None) == (csr is None):
        raise BadInput("give exactly one of a public key or a CSR")
    with _translated():
        prof = profile_get(profile)
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
        with transaction.atomic():
            # One query: the share lock (a CRL sees this row entirely or not at all) also reads
            # the stamp that validates the per-process CA context.
            ca = authorities.authority_lock_shared(short_name=authority)
            if prof.name not in ca.profiles and prof.name != "ocsp_responder":
                raise ProfileViolation(
                    "profile.offered_by_ca", f"CA {authority} does not issue profile {prof.name}"
                )
            if subject is None:
                subject = names.technical_subject(
                    common_name=subject_cn, organisation=ca.organisation
                )
            now = timezone.now()
            cert = builders.build_certificate(
                profile=prof,
                public_key=key,
                subject=subject,
                serial=builders.random_serial(secrets.token_bytes),
                now=now,
                issuer=ca.issuer(),
                holder=holder if prof.holder_required else None,
                policies=ca.policies_for(profile),
                category=ca.category,
            )
            answer = None
            if profile != "ocsp_responder":
                # signed before the insert so that both rows go in back to back
                answer = _ocsp_answer(
                    ca,
                    serial=cert.serial_number,
                    status=CertificateStatus.ON_HOLD if on_hold else CertificateStatus.VALID,
                    revoked_at=None,
                    revocation_reason="",
                    hold_since=now,
                    now=now,
                )
            row = _store(
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
                    "from_csr": csr is not None,
                },
            )
    return row


# --- revocation and hold ----------------------------------------------------------------------


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
    cert.crl_entry = _entry_of(cert)
    cert.save(update_fields=["status", stamp, *changes, "status_changed_at", "crl_entry"])
    _audit_status(cert, actor, action, **(details or {}))
    _ocsp_presign([cert], ca, now)
    return cert


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
        refusal=lambda cert: f"is already revoked ({cert.revocation_reason})",
        changes={"revocation_reason": reason.value},
        details={"reason": reason.value},
    )


@transaction.atomic
def certificate_hold(*, certificate_id: int, actor: Actor) -> Certificate:
    """Suspend (certificateHold). Holding a held certificate is a no-op."""
    return _certificate_status_set(
        certificate_id,
        status=CertificateStatus.ON_HOLD,
        stamp="hold_since",
        actor=actor,
        action="pki.certificate_hold",
        refusal=lambda cert: "is revoked; it cannot be put on hold",
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
        refusal=lambda cert: "is revoked; it cannot be released",
    )


# --- CRLs ------------------------------------------------------------------------------------

_REASONS = {r.value: r for r in RevocationReason}

# Stored entries of the listed rows, concatenated server-side in one value (string_agg of bytea;
# the row order does not matter in a CRL).
_FULL_SQL_POSTGRESQL = (
    "SELECT string_agg(crl_entry, ''::bytea), count(*) FROM pki_certificate "
    "WHERE issuer_id = %s AND status <> 'valid' AND crl_entry IS NOT NULL"
)
# Listed rows without a stored entry (written outside the services): found through the
# partial index pki_cert_listed_no_entry_idx, normally empty.
_UNENCODED_SQL = (
    "SELECT CAST(serial AS TEXT), status, revoked_at, revocation_reason, hold_since "
    "FROM pki_certificate WHERE issuer_id = %s AND status <> 'valid' AND crl_entry IS NULL"
)
DELTA_SQL = (
    "SELECT crl_entry, CAST(serial AS TEXT), status, revoked_at, revocation_reason, hold_since, "
    "released_at FROM pki_certificate WHERE issuer_id = %s AND status_changed_at > %s"
)


def _listed_entry(
    serial: str, status: str, revoked_at: dt.datetime | None, reason: str, hold: dt.datetime | None
) -> bytes:
    if status == CertificateStatus.REVOKED:
        assert revoked_at is not None
        return crl_der.crl_entry(int(serial), revoked_at, _REASONS[reason])
    assert hold is not None
    return crl_der.crl_entry(int(serial), hold, RevocationReason.CERTIFICATE_HOLD)


def _full_entries(ca_id: int) -> tuple[bytes, int]:
    """The concatenated DER entries of every listed serial, and their count."""
    with connection.cursor() as cur:
        cur.execute(_FULL_SQL_POSTGRESQL, [ca_id])
        row = cur.fetchone()
        assert row is not None
        parts = [bytes(row[0] or b"")]
        count = int(row[1])
        cur.execute(_UNENCODED_SQL, [ca_id])
        for serial, status, revoked_at, reason, hold_since in cur.fetchall():
            parts.append(_listed_entry(serial, status, revoked_at, reason, hold_since))
            count += 1
    return b"".join(parts), count


def _delta_entries(ca_id: int, since: dt.datetime) -> tuple[bytes, int]:
    """Entries of what changed after ``since`` (index pki_cert_issuer_changed_idx): listed rows
    as stored, released ones as removeFromCRL."""
    parts: list[bytes] = []
    with connection.cursor() as cur:
        cur.execute(DELTA_SQL, [ca_id, connection.ops.adapt_datetimefield_value(since)])
        rows = cur.fetchall()
    for entry, serial, status, revoked_at, reason, hold_since, released_at in rows:
        if status != CertificateStatus.VALID:
            parts.append(
                bytes(entry)
                if entry is not None
                else _listed_entry(serial, status, revoked_at, reason, hold_since)
            )
        elif released_at is not None and released_at > since:
            remove = RevocationReason.REMOVE_FROM_CRL
            parts.append(crl_der.crl_entry(int(serial), released_at, remove))
    return b"".join(parts), len(parts)


@transaction.atomic
def crl_publish(*, authority: str, kind: CrlKind, actor: Actor) -> CrlPublication:
    """Sign and store the next full or delta CRL of one CA (monotonic shared number)."""
    return _crl_publish_locked(_authority_for_update(authority), kind, actor)


def _authority_for_update(short_name: str) -> CertificateAuthority:
    try:
        return CertificateAuthority.objects.select_for_update().get(short_name=short_name)
    except CertificateAuthority.DoesNotExist:
        raise NotFound(f"no certificate authority {short_name!r}") from None


def crl_due(
    ca: CertificateAuthority, kind: CrlKind, *, interval: dt.timedelta, now: dt.datetime
) -> bool:
    """Whether a CRL of ``kind`` is due, judged from the publications stored in the database.

    A full CRL is due ``interval`` after the last one; a delta ``interval`` after the last delta,
    and at once when a newer full CRL than its base exists (the delta follows its new base).
    """
    latest = ca.crls.filter(kind=kind).order_by("-number").values("as_of", "base_number").first()
    if latest is None or latest["as_of"] + interval <= now:
        return True
    if kind == CrlKind.DELTA:
        full = ca.crls.filter(kind=CrlKind.FULL).order_by("-number").values("number").first()
        return full is not None and full["number"] != latest["base_number"]
    return False


@transaction.atomic
def crl_publish_if_due(
    *, authority: str, kind: CrlKind, interval: dt.timedelta, actor: Actor
) -> CrlPublication | None:
    """:func:`crl_publish` if :func:`crl_due`, decided under the CA lock (a redelivered or
    concurrent run publishes once)."""
    ca = _authority_for_update(authority)
    if not crl_due(ca, kind, interval=interval, now=timezone.now()):
        return None
    return _crl_publish_locked(ca, kind, actor)


def _crl_publish_locked(ca: CertificateAuthority, kind: CrlKind, actor: Actor) -> CrlPublication:
    authority = ca.short_name
    now = timezone.now()
    base: CrlPublication | None = None
    if kind == CrlKind.DELTA:
        # not its DER: the base of a 1M-entry CRL is tens of megabytes
        base = ca.crls.filter(kind=CrlKind.FULL).order_by("-number").defer("der").first()
        if base is None:
            raise Conflict(f"CA {authority} has no full CRL yet: publish a full CRL first")
        entries, count = _delta_entries(ca.pk, base.as_of)
        hours = ca.delta_crl_next_update_hours
    else:
        entries, count = _full_entries(ca.pk)
        hours = ca.crl_next_update_hours
    number = ca.crl_number + 1
    next_update = now + dt.timedelta(hours=hours)
    with _translated():
        issuer = _issuer(ca)
        crl = builders.assemble_crl(
            issuer_certificate=issuer.certificate,
            signing_key=issuer.key,
            entries=entries,
            number=number,
            this_update=now,
            next_update=next_update,
            delta_base=base.number if base else None,
            freshest_crl_url=issuer.urls.delta_crl if ca.kind == CaKind.ISSUING else None,
        )
    ca.crl_number = number
    ca.save(update_fields=["crl_number"])
    publication = CrlPublication.objects.create(
        authority=ca,
        kind=kind,
        number=number,
        base_number=base.number if base else None,
        this_update=now.replace(microsecond=0),
        next_update=next_update.replace(microsecond=0),
        as_of=now,
        entry_count=count,
        der=crl,
    )
    audit_event_create(
        actor=actor,
        action="pki.crl_publish",
        object_type="pki.crl",
        object_id=str(publication.pk),
        details={"authority": authority, "kind": kind, "number": number, "entries": count},
    )
    return publication


# --- OCSP ------------------------------------------------------------------------------------


def ocsp_responses_refresh(
    *,
    actor: Actor,
    certificate_ids: Iterable[int] | None = None,
    authority: str | None = None,
    due_before: dt.datetime | None = None,
    chunk_size: int = 500,
) -> int:
    """Pre-sign again the OCSP answer of the given certificates (or all of a CA, or all).

    With ``due_before``, only answers missing or whose nextUpdate comes before it.

    Rows are locked while their answer is signed, so a redelivered or late task re-reads the
    newest status and can never write an older one over a newer one.
    """
    qs = Certificate.objects.exclude(profile="ocsp_responder").order_by("pk")
    if due_before is not None:
        qs = qs.filter(Q(ocsp_response__isnull=True) | Q(ocsp_response__next_update__lt=due_before))
    if certificate_ids is not None:
        qs = qs.filter(pk__in=list(certificate_ids))
    if authority is not None:
        qs = qs.filter(issuer__short_name=authority)
    ids = list(qs.values_list("pk", flat=True))
    done = 0
    for start in range(0, len(ids), chunk_size):
        done += _refresh_chunk(ids[start : start + chunk_size], actor)
    return done


@transaction.atomic
def _refresh_chunk(ids: list[int], actor: Actor) -> int:
    certs = list(Certificate.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    now = timezone.now()
    by_issuer: dict[int, list[Certificate]] = {}
    for cert in certs:
        by_issuer.setdefault(cert.issuer_id, []).append(cert)
    done = 0
    for issuer_id, group in by_issuer.items():
        ca = authorities.authority_lock_shared(pk=issuer_id)
        done += _ocsp_presign(group, ca, now)
    if done:
        audit_event_create(
            actor=actor,
            action="pki.ocsp_responses_refresh",
            object_type="pki.ocsp",
            object_id=str(certs[0].pk),
            details={"count": done, "first_id": ids[0], "last_id": ids[-1]},
        )
    return done


def _ocsp_answer(
    ca: authorities.AuthorityContext,
    *,
    serial: int,
    status: str,
    revoked_at: dt.datetime | None,
    revocation_reason: str,
    hold_since: dt.datetime | None,
    now: dt.datetime,
) -> builders.OcspAnswer | None:
    """The pre-signed (SHA-1 CertID, no nonce) answer for one status; ``None`` without responder."""
    with _translated():
        signer = ca.ocsp_signer()
        if signer is None:
            return None
        ocsp_status, when, reason = status_of(status, revoked_at, revocation_reason, hold_since)
        return builders.ocsp_answer_sign(
            signer,
            serial=serial,
            status=ocsp_status,
            revoked_at=when,
            reason=reason,
            now=now,
            validity=dt.timedelta(hours=ca.ocsp_validity_hours),
        )


def _ocsp_presign(
    certs: list[Certificate], ca: authorities.AuthorityContext, now: dt.datetime
) -> int:
    """Sign and store (upsert) the answer of each certificate, in the caller's transaction."""
    rows: list[OcspResponse] = []
    for cert in certs:
        answer = _ocsp_answer(
            ca,
            serial=int(cert.serial),
            status=cert.status,
            revoked_at=cert.revoked_at,
            revocation_reason=cert.revocation_reason,
            hold_since=cert.hold_since,
            now=now,
        )
        if answer is None:
            return 0
        rows.append(
            OcspResponse(
                certificate_id=cert.pk,
                authority_id=ca.pk,
                serial=cert.serial,
                status=cert.status,
                this_update=answer.this_update,
                next_update=answer.next_update,
                der=answer.der,
            )
        )
    OcspResponse.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["certificate"],
        update_fields=["status", "this_update", "next_update", "der"],
    )
    return len(rows)


# --- publication (pki_publish and the beat task) --------------------------------------------


def pki_publish_all(
    *,
    actor: Actor,
    authority: str | None = None,
    ocsp: bool = True,
    due_only: bool = False,
) -> list[str]:
    """What ``pki_publish`` and the beat task do; returns a line per action.

    ``due_only`` (the beat task, ``pki_publish --due``): a full CRL every
    ``PKI_FULL_CRL_INTERVAL_SECONDS``, a delta every ``PKI_DELTA_CRL_INTERVAL_SECONDS``, judged
    from the publications stored in the database, so a restarted beat resumes where it was;
    OCSP answers missing or near their nextUpdate. Otherwise everything is published now.
    Both renew responder certificates within ``PKI_OCSP_RESPONDER_RENEWAL_DAYS`` of expiry.
    """
    done: list[str] = []
    now = timezone.now()
    intervals = {
        CrlKind.FULL: dt.timedelta(seconds=settings.PKI_FULL_CRL_INTERVAL_SECONDS),
        CrlKind.DELTA: dt.timedelta(seconds=settings.PKI_DELTA_CRL_INTERVAL_SECONDS),
    }
    cas = CertificateAuthority.objects.order_by("id")
    if authority is not None:
        cas = cas.filter(short_name=authority)
    for ca in cas:
        kinds = [CrlKind.FULL, CrlKind.DELTA] if ca.kind == CaKind.ISSUING else [CrlKind.FULL]
        for kind in kinds:
            if due_only:
                crl = crl_publish_if_due(
                    authority=ca.short_name, kind=kind, interval=intervals[kind], actor=actor
                )
            else:
                crl = crl_publish(authority=ca.short_name, kind=kind, actor=actor)
            if crl is not None:
                line = f"{ca.short_name}: {kind} CRL #{crl.number} ({crl.entry_count} entries)"
                done.append(line)
        if ca.kind != CaKind.ISSUING:
            continue
        renewed = ocsp_responder_renew(
            authority=ca.short_name,
            actor=actor,
            within=dt.timedelta(days=settings.PKI_OCSP_RESPONDER_RENEWAL_DAYS),
        )
        if renewed is not None:
            done.append(
                f"{ca.short_name}: OCSP responder renewed, serial {int(renewed.serial):x} "
                f"valid until {renewed.not_after:%Y-%m-%d}"
            )
        if ocsp:
            # after a renewal every answer is signed again by the new responder
            due = None
            if due_only and renewed is None:
                due = now + dt.timedelta(seconds=settings.PKI_OCSP_REFRESH_MARGIN_SECONDS)
            count = ocsp_responses_refresh(actor=actor, authority=ca.short_name, due_before=due)
            done.append(f"{ca.short_name}: {count} OCSP responses signed")
    return done


# --- hierarchy (pki_init) ----------------------------------------------------------------------


def _ensure_key(backend_alias: str, label: str, key_size: int) -> str:
    backend = key_backend_get(backend_alias)
    handle = backend.handle_for(label)
    # A key left by an interrupted run is reused: the CA row is what makes a CA exist.
    if backend.has_key(handle):
        return handle
    return backend.generate_rsa(label=label, key_size=key_size)


def _ca_profile(config: HierarchyConfig, auth: AuthorityConfig) -> Profile:
    prof = PROFILES["ca_root" if auth.kind == "root" else "ca_issuing"]
    if config.allow_small_ca_keys:
        prof = prof.with_key_sizes(prof.rsa_key_sizes | {2048, 3072})
    return prof


def hierarchy_init(*, config: HierarchyConfig, backend: str, actor: Actor) -> list[str]:
    """Create what is missing of the configured hierarchy; return what was created."""
    created: list[str] = []
    with _translated():
        key_backend_get(backend).check()
        for auth in config.authorities:
            ca = CertificateAuthority.objects.filter(short_name=auth.short_name).first()
            if ca is None:
                ca = _authority_create(config=config, auth=auth, backend=backend, actor=actor)
                created.append(auth.short_name)
            if ca.kind == CaKind.ISSUING and ca.ocsp_responder_id is None:
                _responder_create(config=config, ca=ca, actor=actor)
                created.append(f"{auth.short_name} OCSP responder")
    return created


def _authority_create(
    *, config: HierarchyConfig, auth: AuthorityConfig, backend: str, actor: Actor
) -> CertificateAuthority:
    handle = _ensure_key(backend, auth.short_name, auth.key_size)
    key = key_backend_get(backend).private_key(handle)
    subject = names.ca_name(
        common_name=auth.common_name,
        organisation=config.organisation,
        organisation_units=config.organisation_units,
    )
    profile_name = "ca_root" if auth.kind == "root" else "ca_issuing"
    with transaction.atomic():
        parent = None
        issuer = None
        if auth.parent is not None:
            parent = CertificateAuthority.objects.select_for_update().get(short_name=auth.parent)
            issuer = _issuer(parent)
        cert = builders.build_certificate(
            profile=_ca_profile(config, auth),
            public_key=key.public_key(),
            subject=subject,
            serial=builders.random_serial(secrets.token_bytes),
            now=timezone.now(),
            issuer=issuer,
            self_signing_key=key if issuer is None else None,
            policies=auth.policies.get(profile_name, ()),
        )
        name_hash, key_hash = builders.issuer_hashes(cert)
        ca = CertificateAuthority.objects.create(
            short_name=auth.short_name,
            common_name=auth.common_name,
            kind=auth.kind,
            parent=parent,
            key_backend=backend,
            key_handle=handle,
            certificate_der=cert.public_bytes(serialization.Encoding.DER),
            issuer_name_hash=name_hash.hex(),
            issuer_key_hash=key_hash.hex(),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            profiles=list(auth.profiles),
            policies={
                p: [{"oid": s.oid, "cps_uri": s.cps_uri} for s in specs]
                for p, specs in auth.policies.items()
            },
            crl_next_update_hours=config.crl_next_update_hours,
            delta_crl_next_update_hours=config.delta_crl_next_update_hours,
            ocsp_validity_hours=config.ocsp_validity_hours,
        )
        audit_event_create(
            actor=actor,
            action="pki.authority_create",
            object_type="pki.authority",
            object_id=str(ca.pk),
            details={
                "short_name": ca.short_name,
                "backend": backend,
                "serial": format(cert.serial_number, "x"),
                "key_size": auth.key_size,
            },
        )
    return ca


def _responder_create(*, config: HierarchyConfig, ca: CertificateAuthority, actor: Actor) -> None:
    label = f"{ca.short_name}-ocsp"
    handle = _ensure_key(ca.key_backend, label, config.responder_key_size)
    key = key_backend_get(ca.key_backend).private_key(handle)
    with transaction.atomic():
        ca = CertificateAuthority.objects.select_for_update().get(pk=ca.pk)
        if ca.ocsp_responder_id is not None:
            return
        _responder_install(
            ca=ca,
            key=key,
            handle=handle,
            organisation=config.organisation,
            issuer=_issuer(ca),
            actor=actor,
            action="pki.ocsp_responder_create",
        )


def ocsp_responder_renew(
    *, authority: str, actor: Actor, within: dt.timedelta, force: bool = False
) -> Certificate | None:
    """Replace the delegated responder certificate of an issuing CA, with a new key, when it
    expires within ``within`` (or at once with ``force``). Returns the new certificate, or
    ``None`` when nothing was due. The old key stays in the backend (answers it signed remain
    verifiable until their nextUpdate)."""
    ca = selectors.authority_get(short_name=authority)
    if not _responder_due(ca, within=within, force=force):
        return None
    old = ca.ocsp_responder
    assert old is not None
    old_key = x509.load_der_x509_certificate(bytes(old.der)).public_key()
    key_size = old_key.key_size if isinstance(old_key, rsa.RSAPublicKey) else 2048
    # Slow (key generation) and outside the transaction; a key left by a lost race is unused.
    with _translated():
        backend = key_backend_get(ca.key_backend)
        label = f"{ca.short_name}-ocsp-{timezone.now():%Y%m%d%H%M%S}-{secrets.token_hex(2)}"
        handle = backend.generate_rsa(label=label, key_size=key_size)
        key = backend.private_key(handle)
    with transaction.atomic(), _translated():
        ca = CertificateAuthority.objects.select_for_update().get(pk=ca.pk)
        if not _responder_due(ca, within=within, force=force) or ca.ocsp_responder_id != old.pk:
            return None
        context = authorities.authority_context((ca.pk, ca.created_at, ca.ocsp_responder_id))
        row = _responder_install(
            ca=ca,
            key=key,
            handle=handle,
            organisation=context.organisation,
            issuer=context.issuer(),
            actor=actor,
            action="pki.ocsp_responder_renew",
            details={
                "replaces": format(int(old.serial), "x"),
                "old_not_after": old.not_after.isoformat(),
            },
        )
    return row


def _responder_install(
    *,
    ca: CertificateAuthority,
    key: rsa.RSAPrivateKey,
    handle: str,
    organisation: str,
    issuer: builders.Issuer,
    actor: Actor,
    action: str,
    details: dict[str, str] | None = None,
) -> Certificate:
    """Certify ``key`` as ``ca``'s delegated OCSP responder and make it the current one (inside
    the caller's transaction, with the CA row locked), audited as ``action``."""
    now = timezone.now()
    cert = builders.build_certificate(
        profile=PROFILES["ocsp_responder"],
        public_key=key.public_key(),
        subject=names.technical_subject(
            common_name=f"OCSP {ca.short_name}", organisation=organisation
        ),
        serial=builders.random_serial(secrets.token_bytes),
        now=now,
        issuer=issuer,
    )
    row = _store(
        ca_id=ca.pk, cert=cert, profile="ocsp_responder", holder=None, on_hold=False, now=now
    )
    ca.ocsp_responder = row
    ca.ocsp_key_handle = handle
    ca.save(update_fields=["ocsp_responder", "ocsp_key_handle"])
    audit_event_create(
        actor=actor,
        action=action,
        object_type="pki.certificate",
        object_id=str(row.pk),
        details={
            "authority": ca.short_name,
            "serial": format(cert.serial_number, "x"),
            **(details or {}),
        },
    )
    return row


def _responder_due(ca: CertificateAuthority, *, within: dt.timedelta, force: bool) -> bool:
    if ca.kind != CaKind.ISSUING or ca.ocsp_responder is None:
        return False
    return force or ca.ocsp_responder.not_after - within <= timezone.now()
