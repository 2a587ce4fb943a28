"""The station's claim: the oldest job of its site (for the inserted card when it names one),
claimed under a lease, and the session started on it, whose first batch is the claim's answer.

A claim locks candidate job rows with ``SELECT … FOR UPDATE SKIP LOCKED``: two stations asking at
the same moment never get the same job, and neither waits for the other.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from cards.station_protocol import ClaimAnswer
from cms.choices import CardStatus, RequestStatus
from cms.models import Card, PersonalizationJob, Station
from cms.personalization.choices import JobStatus
from cms.personalization.codes import codes_claim
from cms.personalization.cpu import cpu_start
from cms.personalization.jobs import (
    LEASE_EXPIRED,
    SYSTEM,
    CardIdentity,
    job_release,
    job_release_locked,
    jobs_expire,
    jobs_sync,
    lease_duration,
)
from cms.personalization.session import session_begin, session_create
from cms.services.requests import request_personalization_start
from core.audit import audit_appends_batched, audit_event_create
from core.errors import ApplicationError, Conflict, NotFound


def station_claim(*, station: Station, identity: CardIdentity | None) -> ClaimAnswer | None:
    """The station's claim: expire lost leases, turn queued requests into jobs, claim one (for the
    inserted card) and start its session; returns the first batch, which card to insert when no
    card is given, or None if there is no job."""
    jobs_expire()
    jobs_sync()
    if identity is not None:
        # An issued card with a queued new-codes request is served here (it has no job).
        codes = codes_claim(station=station, identity=identity)
        if codes is not None:
            return codes
    job = job_claim(station=station, identity=identity)
    if job is None:
        return None
    if identity is None:
        return {"state": "insert_card", "job": str(job.pk), "chip_serial": job.card.chip_serial}
    cpu_start()
    session = session_create(job=job, station=station, identity=identity)
    try:
        return session_begin(session, session.card)
    except ApplicationError:
        job_release(job_id=job.pk, station=station, reason="the session could not start")
        raise


# One atomic block whose audit events (the card, the request, the claim) go in with one chain
# extension at its end (ADR 0028).
@audit_appends_batched()
def job_claim(*, station: Station, identity: CardIdentity | None) -> PersonalizationJob | None:
    """Claim the oldest job of the station's site, an expedited replacement's first (for the
    inserted card when it is given).

    Returns None when there is nothing to do. The request moves to personalizing and its card to
    PERSONALIZING on its first claim; a reclaimed job (lease expired, card reinserted) keeps them.
    """
    now = timezone.now()
    candidates = PersonalizationJob.objects.select_for_update(
        skip_locked=True, of=("self",)
    ).filter(
        Q(status=JobStatus.QUEUED) | Q(status=JobStatus.CLAIMED, lease_expires_at__lt=now),
        Q(pool__isnull=True) | Q(pool_id=station.site_id),
    )
    if identity is not None:
        candidates = candidates.filter(card__chip_serial=identity.chip_serial.upper())
    # Expedited replacements (a lost or stolen card) first, then oldest first.
    job = (
        candidates.select_related("request")
        .order_by("-request__expedited", "created_at", "pk")
        .first()
    )
    if job is None:
        if identity is not None:
            _explain_no_job(station, identity)
        return None
    if job.status == JobStatus.CLAIMED:
        job_release_locked(job, LEASE_EXPIRED)
    job.status = JobStatus.CLAIMED
    job.station = station
    job.lease_expires_at = now + lease_duration()
    job.attempts += 1
    job.save(update_fields=["status", "station", "lease_expires_at", "attempts", "updated_at"])
    if job.request.status == RequestStatus.QUEUED:  # re-checked under its lock by the service
        request_personalization_start(request_id=job.request_id, caller=SYSTEM)
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
