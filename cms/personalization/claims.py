"""The station's claim: the oldest job of its site (for the inserted card when it names one),
claimed under a lease, and the session started on it, whose first batch is the claim's answer.

A claim locks candidate job rows with ``SELECT … FOR UPDATE SKIP LOCKED``: two stations asking at
the same moment never get the same job, and neither waits for the other.

Every claim first does the queue's housekeeping (leases run out, sealed secrets of resumes that
will not happen, failed requests queued again, queued requests turned into jobs) and looks for a
new-codes request of the inserted card. One plain SQL statement tells which of them has anything
to do; only those run (docs/adr/0031-claim-housekeeping-on-demand.md).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from cards.station_protocol import ClaimAnswer
from cms.choices import CardStatus, RequestStatus
from cms.models import (
    Card,
    CardRequest,
    NewCodesRequest,
    PersonalizationJob,
    PersonalizationSession,
    Station,
)
from cms.personalization.choices import JobStatus, SessionStatus
from cms.personalization.codes import codes_claim
from cms.personalization.cpu import cpu_start
from cms.personalization.jobs import (
    LEASE_EXPIRED,
    STATION_RECLAIMED,
    SYSTEM,
    CardIdentity,
    job_reclaim_locked,
    job_release,
    jobs_create,
    jobs_expire,
    lease_duration,
    requests_failed_requeue,
    sessions_secrets_sweep,
)
from cms.personalization.live import session_forget
from cms.personalization.session import session_begin, session_create
from cms.services.requests import request_personalization_start
from core.audit import audit_appends_batched, audit_event_create
from core.errors import ApplicationError, Conflict, NotFound


def station_claim(*, station: Station, identity: CardIdentity | None) -> ClaimAnswer | None:
    """The station's claim: expire lost leases, turn queued requests into jobs, claim one (for the
    inserted card) and start its session; returns the first batch, which card to insert when no
    card is given, or None if there is no job."""
    serial = identity.chip_serial.upper() if identity is not None else None
    due, jobs_owed = _housekeeping(serial)
    if jobs_owed and (identity is None or due.new_codes):
        # Made apart, before the claim, as all claims did: only the claim of an inserted card's
        # job makes them in its own transaction.
        jobs_create()
        jobs_owed = False
    if identity is not None and due.new_codes:
        # An issued card with a queued new-codes request is served here (it has no job).
        codes = codes_claim(station=station, identity=identity)
        if codes is not None:
            return codes
    if identity is None:
        job = job_claim(station=station, identity=None)
        if job is None:
            return None
        return {"state": "insert_card", "job": str(job.pk), "chip_serial": job.card.chip_serial}
    return _claim_and_begin(station=station, identity=identity, jobs_owed=jobs_owed)


# --- housekeeping -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Due:
    """Which housekeeping step has something to do, and whether the inserted card has a queued
    new-codes request: each the condition its step (or ``codes_claim``) looks for."""

    expired: bool
    stale_secrets: bool
    failed: bool
    jobless: bool
    new_codes: bool


# Each EXISTS is the step's own query reduced to "is there one": ``jobs_expire``,
# ``sessions_secrets_sweep``, ``requests_failed_requeue`` (a failed request is queued again only
# onto a blank card of its product and pool: without one, the step would run on every claim for
# nothing while stock is out), ``jobs_create`` and the entry of
# ``codes_claim``. The steps re-check under their locks; this read only spares them when there is
# nothing to do (the common case: one statement of a fraction of a millisecond instead of seven
# built by the ORM). The partial index cms_session_sealed_kept_idx serves the second one.
_DUE = """
SELECT
    EXISTS (
        SELECT 1 FROM cms_personalizationjob
        WHERE status = %(job_claimed)s AND lease_expires_at < %(now)s
    ),
    EXISTS (
        SELECT 1 FROM cms_personalizationsession s
        JOIN cms_personalizationjob j ON j.id = s.job_id
        JOIN cms_cardrequest r ON r.id = j.request_id
        WHERE s.sealed_secrets IS NOT NULL AND s.status <> %(session_running)s
        AND (j.status IN (%(job_done)s, %(job_cancelled)s)
             OR r.status NOT IN (%(request_queued)s, %(request_personalizing)s))
    ),
    EXISTS (
        SELECT 1 FROM cms_cardrequest r
        WHERE r.status = %(request_failed)s AND EXISTS (
            SELECT 1 FROM cms_card c
            WHERE c.status = %(card_in_stock)s AND c.product_id = r.product_id
            AND (r.pool_id IS NULL OR c.pool_id = r.pool_id)
        )
    ),
    EXISTS (
        SELECT 1 FROM cms_cardrequest r
        WHERE r.status = %(request_queued)s AND r.card_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM cms_personalizationjob j
            WHERE j.request_id = r.id AND j.status IN (%(job_queued)s, %(job_claimed)s)
        )
    ),
    %(serial)s::text IS NOT NULL AND EXISTS (
        SELECT 1 FROM cms_newcodesrequest n JOIN cms_card c ON c.id = n.card_id
        WHERE c.chip_serial = %(serial)s AND n.status = %(codes_queued)s
    )
"""

_DUE_STATUSES = {
    "job_queued": JobStatus.QUEUED.value,
    "job_claimed": JobStatus.CLAIMED.value,
    "job_done": JobStatus.DONE.value,
    "job_cancelled": JobStatus.CANCELLED.value,
    "session_running": SessionStatus.RUNNING.value,
    "request_queued": RequestStatus.QUEUED.value,
    "request_personalizing": RequestStatus.PERSONALIZING.value,
    "request_failed": RequestStatus.FAILED.value,
    "card_in_stock": CardStatus.IN_STOCK.value,
    "codes_queued": NewCodesRequest.Status.QUEUED.value,
}


def _due(serial: str | None) -> _Due:
    with connection.cursor() as cursor:
        cursor.execute(_DUE, {**_DUE_STATUSES, "now": timezone.now(), "serial": serial})
        row = cursor.fetchone()
    assert row is not None
    return _Due(*(bool(flag) for flag in row))


def _housekeeping(serial: str | None) -> tuple[_Due, bool]:
    """The steps every claim ran (``jobs_expire``, then ``jobs_sync``: secrets sweep, failed
    requests queued again, jobs created), each only when it has something to do; whether jobs
    are to be created is returned: the claim makes them in its own transaction (one commit and
    one chain extension instead of two)."""
    due = _due(serial)
    if due.expired:
        jobs_expire()
        # The sessions it interrupted may leave secrets to drop: look again, as the sweep
        # that followed it did.
        due = _due(serial)
    if due.stale_secrets:
        sessions_secrets_sweep()
    requeued = requests_failed_requeue() if due.failed else 0
    return due, bool(due.jobless or requeued)


# --- the claim ----------------------------------------------------------------------------------


# One statement: the candidate job locked without waiting (SKIP LOCKED: another station's claim
# is never waited for nor shared), expedited replacements (a lost or stolen card) first, then
# oldest first, and the claim written to it, returning the row with the status it had (a claimed
# job is one whose lease ran out, or, for the inserted card, one the same station claimed: it
# lost the answer to its claim, or restarted), its request's, and whether its lease still ran.
_CLAIM = """
WITH candidate AS (
    SELECT j.id, j.status AS job_status, r.status AS request_status,
        COALESCE(j.lease_expires_at >= %(now)s, false) AS lease_running
    FROM cms_personalizationjob j
    JOIN cms_cardrequest r ON r.id = j.request_id
    {card_join}
    WHERE (j.status = %(queued)s OR (j.status = %(claimed)s AND (j.lease_expires_at < %(now)s
        {own_job})))
    AND (j.pool_id IS NULL OR j.pool_id = %(site)s)
    {card_filter}
    ORDER BY r.expedited DESC, j.created_at, j.id
    LIMIT 1
    FOR UPDATE OF j SKIP LOCKED
)
UPDATE cms_personalizationjob AS job
SET status = %(claimed)s, station_id = %(station)s, lease_expires_at = %(lease)s,
    attempts = job.attempts + 1, updated_at = %(now)s
FROM candidate
WHERE job.id = candidate.id
RETURNING {columns}, candidate.job_status, candidate.request_status, candidate.lease_running
"""


@functools.cache
def _claim_sql(*, for_card: bool) -> tuple[str, tuple[str, ...]]:
    """The claim statement (for one card's job or any), with the job's fields in the order it
    returns them."""
    fields = PersonalizationJob._meta.concrete_fields
    sql = _CLAIM.format(
        card_join="JOIN cms_card c ON c.id = j.card_id" if for_card else "",
        card_filter="AND c.chip_serial = %(serial)s" if for_card else "",
        own_job="OR j.station_id = %(station)s" if for_card else "",
        columns=", ".join(f"job.{field.column}" for field in fields),
    )
    return sql, tuple(field.attname for field in fields)


def job_claim(*, station: Station, identity: CardIdentity | None) -> PersonalizationJob | None:
    """Claim the oldest job of the station's site, an expedited replacement's first (for the
    inserted card when it is given).

    Returns None when there is nothing to do. The request moves to personalizing and its card to
    PERSONALIZING on its first claim; a reclaimed job (lease expired, card reinserted) keeps them.
    One atomic block whose audit events (the card, the request, the claim) go in with one chain
    extension at its end (ADR 0028).
    """
    with audit_appends_batched():
        job = _job_claim(station, identity)
    if job is None and identity is not None:
        _explain_no_job(station, identity)
    return job


def _claim_and_begin(
    *, station: Station, identity: CardIdentity, jobs_owed: bool
) -> ClaimAnswer | None:
    """The jobs owed by the housekeeping, the claim of the inserted card's job, its session row
    and the session's first batch (with its checkpoint), in one transaction whose audit events
    go in with one chain extension (ADR 0028); the answer leaves once it commits. A crash before
    the commit leaves the job queued and its card as they were: the next claim starts afresh.

    What each failure leaves is what the transactions this one replaces left: a claim or a
    session row that cannot be made leaves the job unclaimed, and the jobs owed made (again, in
    their own transaction, as before the claim: the error path pays for it, not every claim
    with a savepoint); a session that cannot start is released in the same transaction (the job
    back in the queue), the error raised once it commits."""
    failure: ApplicationError | None = None
    answer: ClaimAnswer | None = None
    job: PersonalizationJob | None = None
    started: PersonalizationSession | None = None
    try:
        with audit_appends_batched():
            if jobs_owed:
                jobs_create()
            job = _job_claim(station, identity)
            if job is not None:
                cpu_start()
                started = session_create(job=job, station=station, identity=identity)
                try:
                    answer = session_begin(started, started.card)
                except ApplicationError as exc:
                    job_release(
                        job_id=started.job_id, station=station, reason="the session could not start"
                    )
                    failure = exc
    except BaseException as exc:
        # Rolled back (any error: this is no fallback, it re-raises): the generator of a
        # session that is not there is dropped, and the jobs owed are made on their own.
        if started is not None:
            session_forget(started.pk)
        if jobs_owed and isinstance(exc, ApplicationError):
            jobs_create()
        raise
    if failure is not None:
        raise failure
    if job is None:
        _explain_no_job(station, identity)  # after the commit: the jobs just made stay made
    return answer


def _job_claim(station: Station, identity: CardIdentity | None) -> PersonalizationJob | None:
    """``job_claim`` inside the caller's atomic block, without the explanation of no job."""
    now = timezone.now()
    sql, names = _claim_sql(for_card=identity is not None)
    params: dict[str, Any] = {
        "queued": JobStatus.QUEUED.value,
        "claimed": JobStatus.CLAIMED.value,
        "now": now,
        "site": station.site_id,
        "station": station.pk,
        "lease": now + lease_duration(),
        "serial": identity.chip_serial.upper() if identity is not None else None,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None  # the callers explain why, once the transaction is over
    *values, was, request_status, lease_running = row
    job = PersonalizationJob.from_db(connection.alias, names, values)
    if was == JobStatus.CLAIMED:
        job_reclaim_locked(job, STATION_RECLAIMED if lease_running else LEASE_EXPIRED)
    if request_status == RequestStatus.QUEUED:  # re-checked under its lock by the service
        request = request_personalization_start(request_id=job.request_id, caller=SYSTEM)
        card = request.card if CardRequest.card.is_cached(request) else None
        if card is not None and card.pk == job.card_id:
            job.card = card  # as the start left it: the session does not read it again
    audit_event_create(
        actor=SYSTEM.actor,
        action="personalization.job_claim",
        object_type="personalization_job",
        object_id=str(job.pk),
        details={
            "station": str(station.pk),
            "card_id": str(job.card_id),
            "attempt": job.attempts,
            "reader": identity.reader if identity else "",
        },
    )
    return job


def _explain_no_job(station: Station, identity: CardIdentity) -> None:
    """Why the inserted card has no job here. Only a card of the station's own site is
    explained; for any other serial (unknown, elsewhere, or routed to another site) the answer
    is one generic refusal, so a station cannot probe the registry."""
    serial = identity.chip_serial.upper()
    card = Card.objects.filter(chip_serial=serial).first()
    job = (
        PersonalizationJob.objects.filter(
            card=card, status__in=(JobStatus.QUEUED, JobStatus.CLAIMED)
        ).first()
        if card is not None
        else None
    )
    own_site = card is not None and (
        job.pool_id == station.site_id if job is not None else card.pool_id == station.site_id
    )
    if card is None or not own_site:
        raise NotFound(
            f"Card {serial} has no personalization job at this station's site.",
            extra={"chip_serial": serial},
        )
    if job is not None:
        raise Conflict(
            f"Card {serial} is being personalized by another station.",
            extra={"card_status": card.status},
        )
    if card.status in (CardStatus.IN_STOCK, CardStatus.ALLOCATED):
        return  # a blank card of this site with no job yet: nothing to do, no error
    raise Conflict(
        f"Card {serial} is {card.status}: it has no personalization job.",
        extra={"card_status": card.status},
    )
