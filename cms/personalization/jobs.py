"""Personalization jobs: queued requests routed to site pools, claimed by stations under a lease.

The claim itself, with the station's session start, is in ``cms.personalization.claims``. A claim
locks candidate job rows with ``SELECT … FOR UPDATE SKIP LOCKED``: two stations asking at
the same moment never get the same job, and neither waits for the other. A claimed job's lease is
renewed by every round trip of its session (and by heartbeats); a job whose lease ran out goes back
to the queue with its card (the card keeps its checkpoint and is resumed when reinserted).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from cms.callers import Caller
from cms.choices import RequestStatus
from cms.models import CardRequest, PersonalizationJob, PersonalizationSession, Station
from cms.personalization.choices import JobStatus, SessionStatus
from cms.personalization.live import session_forget
from cms.services.requests import request_fail, request_queue
from core.audit import AuditEntry, audit_event_create, audit_events_create
from core.errors import BadInput, Conflict, Forbidden, NotFound
from core.roles import Role
from core.sql import row_insert

SYSTEM = Caller.for_system("personalization")


def lease_duration() -> dt.timedelta:
    return dt.timedelta(seconds=settings.STATION_LEASE_SECONDS)


@dataclass(frozen=True)
class CardIdentity:
    """What the station read from the inserted card (public data only)."""

    atr: str
    chip_serial: str
    desfire_uid: str = ""
    reader: str = ""

    def __post_init__(self) -> None:
        if len(self.atr) % 2 or any(c not in "0123456789abcdefABCDEF" for c in self.atr):
            raise BadInput("The ATR is whole bytes in hex.", extra={"fields": {"atr": self.atr}})


def jobs_sync() -> int:
    """Create the jobs of queued requests (and queue failed ones again when stock allows), after
    dropping the sealed secrets no resume will use: every step, whether or not it has work (a
    claim runs only those that have, ``claims._housekeeping``)."""
    sessions_secrets_sweep()
    requests_failed_requeue()
    return jobs_create()


def requests_failed_requeue() -> int:
    """Queue failed requests again while blank cards last; returns how many were queued."""
    with transaction.atomic():
        failed = list(
            CardRequest.objects.select_for_update(skip_locked=True)
            .filter(status=RequestStatus.FAILED)
            .values_list("pk", flat=True)[:50]
        )
    requeued = 0
    for request_id in failed:
        try:
            request_queue(request_id=request_id, caller=SYSTEM)
        except Conflict:
            break  # no blank card: the others wait as well
        requeued += 1
    return requeued


# The queued requests holding a card and no open job, oldest first (CardRequest's ordering),
# locked without waiting: a request another claim is turning into a job is left to it. A
# request being personalized is not taken: an interrupted job keeps its (queued) job row, and a
# second job is never made for it.
_JOBLESS_REQUESTS = """
    SELECT r.id, COALESCE(r.pool_id, c.pool_id), r.card_id
    FROM cms_cardrequest r JOIN cms_card c ON c.id = r.card_id
    WHERE r.status = %s AND NOT EXISTS (
        SELECT 1 FROM cms_personalizationjob j WHERE j.request_id = r.id AND j.status IN (%s, %s)
    )
    ORDER BY r.created_at, r.id
    LIMIT 200
    FOR UPDATE OF r SKIP LOCKED
"""


def jobs_create() -> int:
    """Create the jobs of the queued requests that have none, audited in their transaction;
    returns how many. Every claim may run this: the select is plain SQL and the INSERT is built
    once from the model (``core.sql.row_insert``), not by the ORM at each call. Inside a claim's
    transaction it takes no savepoint: an error rolls the claim back with it."""
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(
            _JOBLESS_REQUESTS,
            [RequestStatus.QUEUED.value, JobStatus.QUEUED.value, JobStatus.CLAIMED.value],
        )
        rows = cursor.fetchall()
        insert = row_insert(PersonalizationJob)
        audited: list[AuditEntry] = []
        for request_id, pool_id, card_id in rows:
            now = timezone.now()  # one a job, as save() would: the claim's order among them
            job = PersonalizationJob(
                request_id=request_id, card_id=card_id, pool_id=pool_id, created_at=now,
                updated_at=now,
            )  # fmt: skip
            cursor.execute(insert.sql, insert.params(job))
            audited.append(
                AuditEntry(
                    actor=SYSTEM.actor,
                    action="personalization.job_create",
                    object_type="personalization_job",
                    object_id=str(job.pk),
                    details={
                        "request_id": str(request_id),
                        "card_id": str(card_id),
                        "pool_id": pool_id,
                    },
                )
            )
        # One chain extension for the jobs created (ADR 0028), in their transaction.
        audit_events_create(audited)
    return len(audited)


def _session_interrupt(job: PersonalizationJob, reason: str) -> None:
    for session in PersonalizationSession.objects.select_for_update().filter(
        job=job, status=SessionStatus.RUNNING
    ):
        session.status = SessionStatus.INTERRUPTED
        session.error = reason[:500]
        session.ended_at = timezone.now()
        session.save(update_fields=["status", "error", "ended_at", "updated_at"])
        session_forget(session.pk)


LEASE_EXPIRED = "lease expired: the station stopped answering"
# The station holding the job claimed its card again: the answer to its claim was lost (a
# connection cut after the CMS committed it), or the station restarted with the card inserted.
STATION_RECLAIMED = "claimed again by its station: the session it was answered is lost to it"


def job_release_locked(job: PersonalizationJob, reason: str) -> None:
    """Back to the queue, its running session interrupted; the caller holds the job row lock."""
    _session_interrupt(job, reason)
    job.status = JobStatus.QUEUED
    job.station = None
    job.lease_expires_at = None
    job.save(update_fields=["status", "station", "lease_expires_at", "updated_at"])
    _release_audit(job, reason)


def job_reclaim_locked(job: PersonalizationJob, reason: str = LEASE_EXPIRED) -> None:
    """A claim took over a job whose lease ran out before the sweep came by, or that its own
    station claimed again (the caller holds the job row lock and has written the new claim to
    it): what ``job_release_locked`` does, running session interrupted and release audited,
    without the row's round trip through the queue. The new session resumes from the
    interrupted one's checkpoint."""
    _session_interrupt(job, reason)
    _release_audit(job, reason)


def _release_audit(job: PersonalizationJob, reason: str) -> None:
    audit_event_create(
        actor=SYSTEM.actor,
        action="personalization.job_release",
        object_type="personalization_job",
        object_id=str(job.pk),
        details={"reason": reason, "card_id": str(job.card_id)},
    )


def job_lease_expire(*, job_id: UUID) -> bool:
    """The station-loss path for one job whose lease ran out: its running session is interrupted
    and the job goes back to the queue with its card (resumed from the checkpoint when the card
    is inserted again), audited in the same transaction. Re-checked under the row lock: a job
    renewed, released, finished or being claimed meanwhile is left alone (False), so a
    redelivered task changes nothing."""
    with transaction.atomic():
        job = (
            PersonalizationJob.objects.select_for_update(skip_locked=True)
            .filter(pk=job_id, status=JobStatus.CLAIMED, lease_expires_at__lt=timezone.now())
            .first()
        )
        if job is None:
            return False
        job_release_locked(job, LEASE_EXPIRED)
    return True


def jobs_expire(*, limit: int = 500) -> int:
    """Put claimed jobs whose lease ran out back in the queue, one short transaction each (the
    Celery beat sweep, and a claim whose housekeeping read found one); returns how many."""
    expired = list(
        PersonalizationJob.objects.filter(
            status=JobStatus.CLAIMED, lease_expires_at__lt=timezone.now()
        ).values_list("pk", flat=True)[:limit]
    )
    return sum(job_lease_expire(job_id=job_id) for job_id in expired)


def jobs_release_for_station(*, station: Station, reason: str) -> int:
    jobs = list(
        PersonalizationJob.objects.select_for_update().filter(
            station=station, status=JobStatus.CLAIMED
        )
    )
    for job in jobs:
        job_release_locked(job, reason)
    return len(jobs)


def job_release(*, job_id: UUID, station: Station, reason: str) -> None:
    """The station gave the job up (card removed, reader error): back to the queue."""
    with transaction.atomic():
        job = (
            PersonalizationJob.objects.select_for_update()
            .filter(pk=job_id, station=station, status=JobStatus.CLAIMED)
            .first()
        )
        if job is not None:
            job_release_locked(job, reason)


def job_heartbeat(*, job_id: UUID, station: Station) -> PersonalizationJob:
    """Renew the lease of a job the station holds; 409 if it lost it."""
    updated = PersonalizationJob.objects.filter(
        pk=job_id, station=station, status=JobStatus.CLAIMED
    ).update(lease_expires_at=timezone.now() + lease_duration())
    if not updated:
        raise Conflict("This station no longer holds the job (lease expired or job finished).")
    return PersonalizationJob.objects.get(pk=job_id)


# --- sealed secrets of resumes that will not happen ---------------------------------------------

_RESUMABLE_REQUEST = (RequestStatus.QUEUED, RequestStatus.PERSONALIZING)


def _secrets_drop(job: PersonalizationJob, reason: str, caller: Caller = SYSTEM) -> int:
    """Null the sealed PIN/PUK/access credential kept on the job's ended sessions, audited.
    Runs inside the caller's transaction, with the job row locked."""
    dropped = (
        PersonalizationSession.objects.filter(job=job, sealed_secrets__isnull=False)
        .exclude(status=SessionStatus.RUNNING)
        .update(sealed_secrets=None)
    )
    if dropped:
        audit_event_create(
            actor=caller.actor,
            action="personalization.secrets_drop",
            object_type="personalization_job",
            object_id=str(job.pk),
            details={"reason": reason, "sessions": dropped, "card_id": str(job.card_id)},
        )
    return dropped


def sessions_secrets_sweep() -> int:
    """Drop the sealed secrets kept for a resume that can no longer happen: the job is closed,
    or its request left personalization (rejected, cancelled, failed, done). Returns how many
    sessions were cleared; the common case (nothing to drop) is one query."""
    stale_jobs = list(
        PersonalizationSession.objects.filter(sealed_secrets__isnull=False)
        .exclude(status=SessionStatus.RUNNING)
        .filter(
            Q(job__status__in=(JobStatus.DONE, JobStatus.CANCELLED))
            | ~Q(job__request__status__in=_RESUMABLE_REQUEST)
        )
        .values_list("job_id", flat=True)
        .distinct()
    )
    dropped = 0
    for job_id in stale_jobs:
        with transaction.atomic():
            job = (
                PersonalizationJob.objects.select_for_update(skip_locked=True)
                .filter(pk=job_id)
                .first()
            )
            if job is not None:
                dropped += _secrets_drop(job, "the job or its request is closed")
    return dropped


@transaction.atomic
def job_abandon(*, job_id: UUID, caller: Caller, note: str = "") -> PersonalizationJob:
    """Give up an interrupted personalization whose card will not come back (lost, broken):
    the request fails with the card spoiled (its certificates revoked by the lifecycle effects)
    and is queued again by the next sync; the sealed PIN/PUK are dropped. Twice is a no-op."""
    if not (caller.system or {Role.ISSUANCE_OPERATOR, Role.SECURITY_OFFICER} & set(caller.roles)):
        raise Forbidden("Only issuance operators and security officers abandon a job.")
    job = PersonalizationJob.objects.select_for_update().filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"No personalization job {job_id}.")
    if job.status not in (JobStatus.QUEUED, JobStatus.CLAIMED):
        return job
    request = CardRequest.objects.get(pk=job.request_id)
    if request.status != RequestStatus.PERSONALIZING:
        raise Conflict("This job has not started writing a card; nothing to abandon.")
    _session_interrupt(job, f"abandoned: {note[:200]}")
    job.status = JobStatus.CANCELLED
    job.station = None
    job.lease_expires_at = None
    job.save(update_fields=["status", "station", "lease_expires_at", "updated_at"])
    # Failing the request (and spoiling the card) is the session's step, a system one; the person
    # who abandons is named in its actor and in the job_abandon event below.
    request_fail(
        request_id=request.pk,
        caller=Caller.for_system(f"personalization (abandoned by {caller.actor.label})"),
        spoiled=True,
        note=f"job abandoned: {note[:200]}",
    )
    dropped = _secrets_drop(job, "job abandoned", caller)
    audit_event_create(
        actor=caller.actor,
        action="personalization.job_abandon",
        object_type="personalization_job",
        object_id=str(job.pk),
        details={"card_id": str(job.card_id), "note": note[:200], "secrets_dropped": dropped},
    )
    return job
