"""Personalization jobs: queued requests routed to site pools, claimed by stations under a lease.

A claim locks candidate job rows with ``SELECT … FOR UPDATE SKIP LOCKED``: two stations asking at
the same moment never get the same job, and neither waits for the other. A claimed job's lease is
renewed by every round trip of its session (and by heartbeats); a job whose lease ran out goes back
to the queue with its card (the card keeps its checkpoint and is resumed when reinserted).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from cms.callers import Caller
from cms.choices import CardStatus, RequestStatus
from cms.models import Card, CardRequest, PersonalizationJob, PersonalizationSession, Station
from cms.personalization.choices import JobStatus, SessionStatus
from cms.services.requests import request_personalization_start, request_queue
from core.audit import audit_event_create
from core.errors import Conflict, NotFound

SYSTEM = Caller.for_system("personalization")


def lease_duration() -> dt.timedelta:
    return dt.timedelta(seconds=int(getattr(settings, "STATION_LEASE_SECONDS", 60)))


@dataclass(frozen=True)
class CardIdentity:
    """What the station read from the inserted card (public data only)."""

    atr: str
    chip_serial: str
    desfire_uid: str = ""
    reader: str = ""


def jobs_sync() -> int:
    """Create the jobs of queued requests (and queue failed ones again when stock allows)."""
    created = 0
    with transaction.atomic():
        failed = list(
            CardRequest.objects.select_for_update(skip_locked=True)
            .filter(status=RequestStatus.FAILED)
            .values_list("pk", flat=True)[:50]
        )
    for request_id in failed:
        try:
            request_queue(request_id=request_id, caller=SYSTEM)
        except Conflict:
            break  # no blank card: the others wait as well
    with transaction.atomic():
        queued = (
            CardRequest.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status__in=(RequestStatus.QUEUED, RequestStatus.PERSONALIZING))
            .filter(card__isnull=False)
            .exclude(jobs__status__in=(JobStatus.QUEUED, JobStatus.CLAIMED))
            .select_related("card")[:200]
        )
        for request in queued:
            if request.status == RequestStatus.PERSONALIZING:
                continue  # an interrupted job keeps its (queued) job row; never a second one
            assert request.card is not None
            PersonalizationJob.objects.create(
                request=request, card=request.card, pool_id=request.pool_id or request.card.pool_id
            )
            created += 1
    return created


def _session_interrupt(job: PersonalizationJob, reason: str) -> None:
    from cms.personalization.session import session_forget

    for session in PersonalizationSession.objects.select_for_update().filter(
        job=job, status=SessionStatus.RUNNING
    ):
        session.status = SessionStatus.INTERRUPTED
        session.error = reason[:500]
        session.ended_at = timezone.now()
        session.save(update_fields=["status", "error", "ended_at", "updated_at"])
        session_forget(session.pk)


def _release(job: PersonalizationJob, reason: str) -> None:
    _session_interrupt(job, reason)
    job.status = JobStatus.QUEUED
    job.station = None
    job.lease_expires_at = None
    job.save(update_fields=["status", "station", "lease_expires_at", "updated_at"])
    audit_event_create(
        actor=SYSTEM.actor,
        action="personalization.job_release",
        object_type="personalization_job",
        object_id=str(job.pk),
        details={"reason": reason, "card_id": str(job.card_id)},
    )


def jobs_expire() -> int:
    """Put claimed jobs whose lease ran out back in the queue; returns how many."""
    now = timezone.now()
    with transaction.atomic():
        expired = list(
            PersonalizationJob.objects.select_for_update(skip_locked=True).filter(
                status=JobStatus.CLAIMED, lease_expires_at__lt=now
            )
        )
        for job in expired:
            _release(job, "lease expired: the station stopped answering")
    return len(expired)


def jobs_release_for_station(*, station: Station, reason: str) -> int:
    jobs = list(
        PersonalizationJob.objects.select_for_update().filter(
            station=station, status=JobStatus.CLAIMED
        )
    )
    for job in jobs:
        _release(job, reason)
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
            _release(job, reason)


@transaction.atomic
def job_claim(*, station: Station, identity: CardIdentity | None) -> PersonalizationJob | None:
    """Claim the oldest job of the station's site (for the inserted card when it is given).

    Returns None when there is nothing to do. The request moves to personalizing and its card to
    PERSONALIZING on its first claim; a reclaimed job (lease expired, card reinserted) keeps them.
    """
    now = timezone.now()
    candidates = PersonalizationJob.objects.select_for_update(
        skip_locked=True, of=("self",)
    ).filter(
        Q(status=JobStatus.QUEUED) | Q(status=JobStatus.CLAIMED, lease_expires_at__lt=now),
        Q(pool__isnull=True) | Q(pool=station.site),
    )
    if identity is not None:
        candidates = candidates.filter(card__chip_serial=identity.chip_serial.upper())
    job = candidates.order_by("created_at", "pk").first()
    if job is None:
        if identity is not None:
            _explain_no_job(station, identity)
        return None
    if job.status == JobStatus.CLAIMED:
        _release(job, "lease expired: the station stopped answering")
    job.status = JobStatus.CLAIMED
    job.station = station
    job.lease_expires_at = now + lease_duration()
    job.attempts += 1
    job.save(update_fields=["status", "station", "lease_expires_at", "attempts", "updated_at"])
    request = CardRequest.objects.get(pk=job.request_id)
    if request.status == RequestStatus.QUEUED:
        request_personalization_start(request_id=request.pk, caller=SYSTEM)
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
    card = Card.objects.filter(chip_serial=identity.chip_serial.upper()).first()
    if card is None:
        raise NotFound(
            f"Card {identity.chip_serial} is not in the registry's stock; register its batch.",
            extra={"chip_serial": identity.chip_serial},
        )
    job = PersonalizationJob.objects.filter(
        card=card, status__in=(JobStatus.QUEUED, JobStatus.CLAIMED)
    ).first()
    if job is not None and job.pool_id not in (None, station.site_id):
        raise Conflict(
            f"Card {identity.chip_serial} is to be personalized at another site.",
            extra={"card_status": card.status},
        )
    if job is not None:
        raise Conflict(
            f"Card {identity.chip_serial} is being personalized by another station.",
            extra={"card_status": card.status},
        )
    if card.status in (CardStatus.IN_STOCK, CardStatus.ALLOCATED):
        return  # a blank card with no job yet: nothing to do, no error
    raise Conflict(
        f"Card {identity.chip_serial} is {card.status}: it has no personalization job.",
        extra={"card_status": card.status},
    )


def job_heartbeat(*, job_id: UUID, station: Station) -> PersonalizationJob:
    """Renew the lease of a job the station holds; 409 if it lost it."""
    updated = PersonalizationJob.objects.filter(
        pk=job_id, station=station, status=JobStatus.CLAIMED
    ).update(lease_expires_at=timezone.now() + lease_duration())
    if not updated:
        raise Conflict("This station no longer holds the job (lease expired or job finished).")
    return PersonalizationJob.objects.get(pk=job_id)
