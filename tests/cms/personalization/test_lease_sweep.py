"""The Celery beat sweep of expired station leases: the station-loss path without waiting for
the next claim, idempotent, audited; a round trip after the sweep learns its session ended."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine

from tests.cms.personalization.conftest import card_queued

pytestmark = pytest.mark.django_db(transaction=True)


def _claimed(scene: Any, card: Any) -> dict[str, Any]:
    """Claim the queued card's job the way a station does; the first batch in hand."""
    from cms.personalization.claims import station_claim
    from cms.personalization.jobs import CardIdentity

    card_queued(scene, card)
    payload = station_claim(
        station=scene.station,
        identity=CardIdentity(
            atr=card.contact.atr.hex().upper(),
            chip_serial=card.serial.hex().upper(),
            desfire_uid=card.desfire_chip.state.uid.hex().upper(),
        ),
    )
    assert payload is not None and payload["state"] == "running"
    return payload


def test_the_sweep_requeues_a_job_whose_lease_expired_once(scene, virtual_card, settings):
    from cms.choices import CardStatus, RequestStatus
    from cms.models import Card, PersonalizationJob, PersonalizationSession
    from cms.personalization.tasks import jobs_lease_sweep_task
    from core.models import AuditEvent

    payload = _claimed(scene, virtual_card)
    job = PersonalizationJob.objects.get(pk=payload["job"])
    assert job.status == "claimed"
    now = job.lease_expires_at - dt.timedelta(seconds=settings.STATION_LEASE_SECONDS)

    with time_machine.travel(now + dt.timedelta(seconds=settings.STATION_LEASE_SECONDS - 1)):
        assert jobs_lease_sweep_task.delay().get() == 0  # still leased: untouched
    job.refresh_from_db()
    assert job.status == "claimed"

    with time_machine.travel(now + dt.timedelta(seconds=settings.STATION_LEASE_SECONDS + 1)):
        assert jobs_lease_sweep_task.delay().get() == 1
        assert jobs_lease_sweep_task.delay().get() == 0  # a second run (or redelivery): no-op

    job.refresh_from_db()
    assert job.status == "queued" and job.station is None and job.lease_expires_at is None
    session = PersonalizationSession.objects.get(pk=payload["session"])
    assert session.status == "interrupted" and "lease expired" in session.error
    assert session.sealed_secrets is not None  # the card is resumed when inserted again
    card = Card.objects.get(pk=job.card_id)
    assert card.status == CardStatus.PERSONALIZING
    assert job.request.status == RequestStatus.PERSONALIZING
    released = AuditEvent.objects.filter(
        action="personalization.job_release", object_id=str(job.pk)
    )
    assert released.count() == 1
    assert released.get().details == {
        "reason": "lease expired: the station stopped answering",
        "card_id": str(job.card_id),
    }


def test_a_round_trip_after_the_sweep_ends_and_the_card_resumes(scene, virtual_card, settings):
    from cms.models import PersonalizationJob, PersonalizationSession
    from cms.personalization.session import session_exchange
    from cms.personalization.tasks import jobs_lease_sweep_task
    from personalization_station.relay import personalize
    from tests.cms.personalization.conftest import link_of

    payload = _claimed(scene, virtual_card)
    job = PersonalizationJob.objects.get(pk=payload["job"])
    later = job.lease_expires_at + dt.timedelta(seconds=1)
    with time_machine.travel(later):
        jobs_lease_sweep_task.delay().get()
        answer = session_exchange(
            session_id=payload["session"], station=scene.station, seq=payload["seq"]
        )
    assert answer["state"] == "interrupted"  # the station stops and claims the card again

    outcome = personalize(scene.api(), link_of(virtual_card))  # the card inserted again
    assert outcome.state == "done", outcome.message
    assert PersonalizationSession.objects.filter(job=job).count() == 2


def test_an_exchange_past_its_lease_but_not_yet_swept_renews_it(scene, virtual_card, settings):
    from cms.models import PersonalizationJob
    from cms.personalization.session import session_exchange

    payload = _claimed(scene, virtual_card)
    job = PersonalizationJob.objects.get(pk=payload["job"])
    later = job.lease_expires_at + dt.timedelta(seconds=5)
    with time_machine.travel(later, tick=False):
        # the station lost our answer and asks again for the batch in flight: still its job
        again = session_exchange(
            session_id=payload["session"], station=scene.station, seq=payload["seq"] - 1
        )
    assert again == payload
    job.refresh_from_db()
    assert job.status == "claimed"
    assert job.lease_expires_at == later + dt.timedelta(seconds=settings.STATION_LEASE_SECONDS)


def test_the_sweep_is_scheduled_on_the_default_queue(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["personalization-lease-sweep"]
    assert entry["task"] == "cms.personalization.tasks.jobs_lease_sweep_task"
    assert entry["schedule"] == float(settings.STATION_LEASE_SWEEP_SECONDS)
    assert entry["options"] == {"queue": "default"}
    assert "cms.personalization.tasks" in settings.CELERY_IMPORTS
