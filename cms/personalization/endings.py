"""How a personalization session ends, each in one transaction with its audit event:

- done: the request completes (the card ISSUED, its certificates on hold, the registry's expiry the
  card's own date), the PIN mailer is queued, the job closes;
- wiped or spoiled (``fail``): the rollback ran (or could not); the request fails, the job closes
  and the request is queued again with another blank card;
- aborted: nothing was written (wrong card, identification failed); the card goes back to stock.

Every ending drops the sealed secrets of the job's sessions and answers the station's last call.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.db import connection, models, transaction
from django.utils import timezone

from cards.programs.cps4 import PHASES, Cps4Result
from cards.station_protocol import Outcome, Progress
from cms.models import CardRequest, PersonalizationJob, PersonalizationSession
from cms.personalization.choices import JobStatus, SessionStatus
from cms.personalization.cpu import cpu_take
from cms.personalization.jobs import SYSTEM
from cms.personalization.mailer import pin_mailer_create
from cms.personalization.sealing import secrets_open
from cms.services.requests import request_complete, request_fail, request_queue
from core.audit import audit_appends_batched, audit_event_create
from core.errors import Conflict
from core.rows import joined_read

log = logging.getLogger("cms.personalization")


def progress(session: PersonalizationSession) -> Progress:
    completed = list((session.checkpoint or {}).get("completed", []))
    return {"completed": completed, "phases": list(PHASES), "mode": session.mode}


def outcome(session: PersonalizationSession) -> Outcome:
    """The station's answer once the session is not running."""
    return {
        "session": str(session.pk),
        "job": str(session.job_id),
        "state": session.status,
        "message": session.error,
        "card_id": str(session.card_id),
        "progress": progress(session),
    }


# One statement for an ending's writes: the session row, the sealed secrets of the job's earlier
# sessions (kept for a resume until now) and, for a card issued, its job and admin key version
# (issue 12: four ORM statements were a third of the commit's CPU). Different rows each, so the
# sub-statements cannot conflict; the session and job rows are already locked by the caller.
_END_SQL = """
WITH earlier AS (
    UPDATE cms_personalizationsession SET sealed_secrets = NULL
    WHERE job_id = %(job)s AND id <> %(session)s
){done}
UPDATE cms_personalizationsession
SET status = %(status)s, error = %(error)s, ended_at = %(ended_at)s, sealed_secrets = NULL,
    server_cpu_ms = server_cpu_ms + %(cpu)s{checkpoint}
WHERE id = %(session)s
"""
_DONE_SQL = """, job AS (
    UPDATE cms_personalizationjob SET status = %(job_status)s, lease_expires_at = NULL,
        updated_at = %(ended_at)s
    WHERE id = %(job)s
)"""
_ADMIN_KEY_SQL = """, card AS (
    UPDATE cms_card SET admin_key_version = %(admin_key_version)s WHERE id = %(card)s
)"""
_CHECKPOINT_SQL = ", checkpoint = %(checkpoint)s, phase = %(phase)s"


def _end(
    session: PersonalizationSession,
    status: SessionStatus,
    error: str = "",
    *,
    done: bool = False,
    admin_key_version: int | None = None,
) -> None:
    """The session ended (its checkpoint and phase written with it if ``done``, the job then
    closed as done, and the card's admin key version set if given)."""
    session.status = status
    session.error = error[:500]
    session.ended_at = timezone.now()
    session.sealed_secrets = None
    params: dict[str, Any] = {
        "job": session.job_id,
        "session": session.pk,
        "status": status.value,
        "error": session.error,
        "ended_at": session.ended_at,
        "cpu": cpu_take(),
    }
    sql = {"done": "", "checkpoint": ""}
    if done:
        sql["done"] = _DONE_SQL
        sql["checkpoint"] = _CHECKPOINT_SQL
        params["job_status"] = JobStatus.DONE.value
        params["checkpoint"] = _CHECKPOINT_FIELD.get_db_prep_save(session.checkpoint, connection)
        params["phase"] = session.phase
        if admin_key_version is not None:
            sql["done"] += _ADMIN_KEY_SQL
            params["admin_key_version"] = admin_key_version
            params["card"] = session.card_id
    with connection.cursor() as cursor:
        cursor.execute(_END_SQL.format(**sql), params)


_CHECKPOINT_FIELD = PersonalizationSession._meta.get_field("checkpoint")
assert isinstance(_CHECKPOINT_FIELD, models.JSONField)


@audit_appends_batched()  # atomic; one chain extension for the issuance's four events
def commit(session: PersonalizationSession, result: Cps4Result) -> Outcome:
    """The card is written and verified: issued, with its PIN mailer queued."""
    # Session and job rows locked by one query (FOR UPDATE covers the joined job row).
    locked = joined_read(PersonalizationSession, ("job",), for_update=True).get(session.pk)
    assert isinstance(locked, PersonalizationSession)
    session = locked
    job = session.job
    sealed = secrets_open(session)
    request = request_complete(
        request_id=job.request_id, caller=SYSTEM, valid_until=session.valid_until
    )
    mailer = pin_mailer_create(request=request, pin=sealed.pin, puk=sealed.puk)
    # docs/offline-unblock.md: the helpdesk derives the card's admin key with this version.
    admin_version = session.key_versions.get("admin")
    job.status = JobStatus.DONE
    job.lease_expires_at = None
    session.checkpoint = result.checkpoint.to_dict()
    session.phase = result.checkpoint.phase
    _end(
        session,
        SessionStatus.DONE,
        done=True,
        admin_key_version=int(admin_version) if admin_version else None,
    )
    audit_event_create(
        actor=SYSTEM.actor,
        action="personalization.complete",
        object_type="personalization_session",
        object_id=str(session.pk),
        details={
            "card_id": str(session.card_id),
            "request_id": str(request.pk),
            "station": str(session.station_id),
            "batches": session.batches,
            "pin_mailer_id": str(mailer.pk),
            "key_versions": session.key_versions,
        },
    )
    return outcome(session)


def _requeue(request_id: UUID) -> None:
    try:
        with transaction.atomic():
            request_queue(request_id=request_id, caller=SYSTEM)
    except Conflict as exc:
        log.warning("request %s stays failed: %s", request_id, exc.message)


def _close_job(session: PersonalizationSession) -> PersonalizationJob:
    job = PersonalizationJob.objects.select_for_update().get(pk=session.job_id)
    job.status = JobStatus.CANCELLED
    job.lease_expires_at = None
    job.save(update_fields=["status", "lease_expires_at", "updated_at"])
    return job


def fail(session: PersonalizationSession, *, spoiled: bool, error: str) -> Outcome:
    """Card wiped (or spoiled): request failed (certificates revoked by the lifecycle effects),
    job closed, request queued again with another blank card."""
    with transaction.atomic():
        job = _close_job(session)
        request_fail(request_id=job.request_id, caller=SYSTEM, spoiled=spoiled, note=error)
        _end(session, SessionStatus.SPOILED if spoiled else SessionStatus.WIPED, error)
        audit_event_create(
            actor=SYSTEM.actor,
            action="personalization.fail",
            object_type="personalization_session",
            object_id=str(session.pk),
            details={"card_id": str(session.card_id), "spoiled": spoiled, "error": error[:200]},
        )
    _requeue(job.request_id)
    return outcome(session)


def abort(session: PersonalizationSession, error: str) -> Outcome:
    """Nothing was written (wrong card, identification failed): the card goes back to stock."""
    with transaction.atomic():
        job = _close_job(session)
        request = CardRequest.objects.get(pk=job.request_id)
        request_fail(request_id=request.pk, caller=SYSTEM, spoiled=False, note=error)
        _end(session, SessionStatus.ABORTED, error)
        audit_event_create(
            actor=SYSTEM.actor,
            action="personalization.abort",
            object_type="personalization_session",
            object_id=str(session.pk),
            details={"card_id": str(session.card_id), "error": error[:200]},
        )
    _requeue(job.request_id)
    return outcome(session)
