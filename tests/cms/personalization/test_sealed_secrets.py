"""The access credential is sealed like PIN and PUK, and sealed secrets are dropped when no
resume can happen (abandoned job, request gone from personalization)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cms.personalization.conftest import card_queued, interrupted_session, link_of

pytestmark = pytest.mark.django_db(transaction=True)


def _access_file(virtual_card: Any) -> bytes:
    from cards.products import DESFIRE_ACCESS_FILE

    for app in virtual_card.desfire_chip.state.apps.values():
        if DESFIRE_ACCESS_FILE in app.files:
            return bytes(app.files[DESFIRE_ACCESS_FILE].data[:16])
    raise AssertionError("the card has no access credential file")


def _row_text(model: Any, **filters: Any) -> str:
    out = []
    for row in model.objects.filter(**filters).values():
        for value in row.values():
            out.append(bytes(value).hex() if isinstance(value, bytes | memoryview) else str(value))
    return " ".join(out).upper()


def test_the_access_credential_is_never_stored_in_clear(scene, virtual_card):
    from cms.models import PersonalizationSession
    from core.models import AuditEvent
    from personalization_station.relay import personalize

    card_queued(scene, virtual_card)
    outcome = personalize(scene.api(), link_of(virtual_card))
    assert outcome.state == "done", outcome.message

    credential = _access_file(virtual_card).hex().upper()
    assert credential != "00" * 16
    assert credential not in _row_text(PersonalizationSession)
    assert credential not in _row_text(AuditEvent)
    assert not any(f.name == "access_credential" for f in PersonalizationSession._meta.fields)
    assert PersonalizationSession.objects.get().sealed_secrets is None


def test_a_resumed_session_writes_the_same_sealed_access_credential(scene, virtual_card):
    from cms.models import PersonalizationSession
    from cms.personalization.sealing import secrets_open
    from personalization_station.relay import personalize

    interrupted = interrupted_session(scene, virtual_card)
    sealed = secrets_open(interrupted).access_credential
    assert sealed.hex().upper() not in _row_text(PersonalizationSession)

    virtual_card.insert()
    second = personalize(scene.api(), link_of(virtual_card))
    assert second.state == "done", second.message
    assert _access_file(virtual_card) == sealed
    # the commit drops the sealed secrets the interrupted session kept for the resume, and only
    # them: that session's own ending stays as it was
    earlier = PersonalizationSession.objects.get(pk=interrupted.pk)
    assert earlier.sealed_secrets is None
    assert (earlier.status, earlier.ended_at, earlier.error, earlier.checkpoint) == (
        interrupted.status,
        interrupted.ended_at,
        interrupted.error,
        interrupted.checkpoint,
    )
    done = PersonalizationSession.objects.exclude(pk=interrupted.pk).get()
    assert done.status == "done" and done.sealed_secrets is None


def test_abandoning_an_interrupted_job_drops_its_sealed_secrets(scene, virtual_card):
    from cms.models import Card, CardRequest, PersonalizationSession
    from cms.personalization.jobs import job_abandon
    from core.models import AuditEvent
    from demo import setup

    session = interrupted_session(scene, virtual_card)
    job_abandon(job_id=session.job_id, caller=setup.SYSTEM, note="card lost in the post")
    job_abandon(job_id=session.job_id, caller=setup.SYSTEM, note="again")  # a no-op

    assert not PersonalizationSession.objects.filter(sealed_secrets__isnull=False).exists()
    assert Card.objects.get(pk=session.card_id).status == "SPOILED"
    assert CardRequest.objects.get(jobs__pk=session.job_id).status == "failed"
    dropped = AuditEvent.objects.get(action="personalization.secrets_drop")
    assert dropped.details == {
        "reason": "job abandoned",
        "sessions": 1,
        "card_id": str(session.card_id),
    }
    assert AuditEvent.objects.filter(action="personalization.job_abandon").count() == 1


def test_only_operators_and_officers_abandon_a_job(scene, virtual_card, make_user):
    from cms.callers import Caller
    from cms.personalization.jobs import job_abandon
    from core.errors import Forbidden

    session = interrupted_session(scene, virtual_card)
    with pytest.raises(Forbidden):
        job_abandon(job_id=session.job_id, caller=Caller.for_user(make_user("auditor")))


def test_the_sweep_drops_secrets_of_a_job_whose_request_left_personalization(scene, virtual_card):
    from cms.models import CardRequest, PersonalizationSession
    from cms.personalization.jobs import sessions_secrets_sweep
    from core.models import AuditEvent

    session = interrupted_session(scene, virtual_card)
    assert sessions_secrets_sweep() == 0  # the job can still resume
    # A request closed by another path (cancelled, rejected by a future rule): no resume.
    CardRequest.objects.filter(jobs__pk=session.job_id).update(status="rejected")
    assert sessions_secrets_sweep() == 1
    assert PersonalizationSession.objects.get(pk=session.pk).sealed_secrets is None
    assert AuditEvent.objects.filter(action="personalization.secrets_drop").count() == 1
    assert sessions_secrets_sweep() == 0
