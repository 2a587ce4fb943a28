"""Pre-signed OCSP answers (RFC 5019: SHA-1 CertID, no nonce), signed whenever a status changes
and refreshed before their nextUpdate, so that ``/ocsp`` serves them from one indexed query."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_event_create
from core.sql import rows_insert
from pki import authorities
from pki.domain import builders
from pki.domain.status import ocsp_status_of
from pki.models import Certificate, OcspResponse
from pki.services.errors import translated


def ocsp_answer_for(
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
    with translated():
        signer = ca.ocsp_signer()
        if signer is None:
            return None
        ocsp_status, when, reason = ocsp_status_of(
            status,
            revoked_at=revoked_at,
            revocation_reason=revocation_reason,
            hold_since=hold_since,
        )
        return builders.ocsp_answer_sign(
            signer,
            serial=serial,
            status=ocsp_status,
            revoked_at=when,
            reason=reason,
            now=now,
            validity=dt.timedelta(hours=ca.ocsp_validity_hours),
        )


def ocsp_presign(
    certs: list[Certificate], ca: authorities.AuthorityContext, now: dt.datetime
) -> int:
    """Sign and store (upsert) the answer of each certificate, in the caller's transaction."""
    rows: list[OcspResponse] = []
    for cert in certs:
        answer = ocsp_answer_for(
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
    rows_insert(OcspResponse, suffix=_UPSERT).execute(rows)
    return len(rows)


# One statement for every answer of a batch (core.sql.rows_insert): a new answer or a fresh one.
_UPSERT = (
    "ON CONFLICT (certificate_id) DO UPDATE SET status = EXCLUDED.status, "
    "this_update = EXCLUDED.this_update, next_update = EXCLUDED.next_update, der = EXCLUDED.der"
)


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
        done += ocsp_presign(group, ca, now)
    if done:
        audit_event_create(
            actor=actor,
            action="pki.ocsp_responses_refresh",
            object_type="pki.ocsp",
            object_id=str(certs[0].pk),
            details={"count": done, "first_id": ids[0], "last_id": ids[-1]},
        )
    return done
