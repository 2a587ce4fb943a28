"""Job creation, checkpoints and the rollback switch are audited once each."""

from __future__ import annotations

import pytest

from tests.cms.personalization.conftest import card_queued, link_of
from tests.cms.personalization.tear_plan import STATION_IDENTIFICATION_APDUS

pytestmark = pytest.mark.django_db(transaction=True)


def test_job_creation_and_checkpoints_are_audited_once_each(scene, virtual_card):
    from cms.models import PersonalizationJob, PersonalizationSession
    from cms.personalization.jobs import jobs_sync
    from core.models import AuditEvent
    from personalization_station.relay import personalize

    card_queued(scene, virtual_card)
    jobs_sync()
    job = PersonalizationJob.objects.get()
    created = AuditEvent.objects.filter(action="personalization.job_create", object_id=str(job.pk))
    assert created.count() == 1
    assert created.get().details["card_id"] == str(job.card_id)

    outcome = personalize(scene.api(), link_of(virtual_card))
    assert outcome.state == "done", outcome.message
    session = PersonalizationSession.objects.get()
    checkpoints = AuditEvent.objects.filter(
        action="personalization.checkpoint", object_id=str(session.pk)
    ).order_by("seq")
    phases = [event.details["phase"] for event in checkpoints]
    # the program's starting point (no phase done yet), then one event per completed phase
    assert phases == ["", *session.checkpoint["completed"]]
    assert checkpoints.count() < session.apdus / 4  # per phase, not per APDU


def test_the_rollback_switch_is_audited(scene, virtual_card):
    from cms.models import PersonalizationSession
    from core.models import AuditEvent
    from personalization_station.relay import personalize

    card_queued(scene, virtual_card)
    virtual_card.faults.sw_at[virtual_card.apdu_count + STATION_IDENTIFICATION_APDUS + 30] = 0x6581
    outcome = personalize(scene.api(), link_of(virtual_card))
    assert outcome.state == "wiped", outcome.message
    session = PersonalizationSession.objects.get()
    assert session.mode == "rollback"
    event = AuditEvent.objects.get(
        action="personalization.rollback_start", object_id=str(session.pk)
    )
    assert event.details["card_id"] == str(session.card_id) and "6581" in event.details["error"]
