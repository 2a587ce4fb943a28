"""The claim's housekeeping runs a step only when one statement finds it has work (ADR 0031), and
the claim itself is one UPDATE … RETURNING: each flag of that statement agrees with its step, a
lease that ran out is still taken over, the jobs of one sync keep their requests' order, and a
session that cannot start leaves its job unclaimed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine

from tests.cms.personalization.conftest import card_queued, interrupted_session

pytestmark = pytest.mark.django_db(transaction=True)


def _identity(card: Any) -> Any:
    from cms.personalization.jobs import CardIdentity

    return CardIdentity(
        atr=card.contact.atr.hex().upper(),
        chip_serial=card.serial.hex().upper(),
        desfire_uid=card.desfire_chip.state.uid.hex().upper(),
        reader="inproc",
    )


def _flags_agree_with_the_steps(serial: str | None = None) -> Any:
    """Each flag of the housekeeping statement against what its own step finds, in the order
    the claim runs them; returns the first reading."""
    from cms.choices import RequestStatus
    from cms.models import CardRequest, NewCodesRequest
    from cms.personalization.claims import _due
    from cms.personalization.jobs import (
        jobs_create,
        jobs_expire,
        requests_failed_requeue,
        sessions_secrets_sweep,
    )

    first = _due(serial)
    assert first.expired == (jobs_expire() > 0)
    due = _due(serial)
    assert due.stale_secrets == (sessions_secrets_sweep() > 0)
    failed = CardRequest.objects.filter(status=RequestStatus.FAILED).exists()
    assert due.failed <= failed
    # The flag may be raised for nothing (a blank card of another product), never missed.
    requeued = requests_failed_requeue()
    assert due.failed or not requeued
    due = _due(serial)
    assert due.jobless == (jobs_create() > 0)
    assert (
        due.new_codes
        == NewCodesRequest.objects.filter(
            card__chip_serial=serial, status=NewCodesRequest.Status.QUEUED
        ).exists()
    )
    after = _due(serial)
    assert not (after.expired or after.stale_secrets or after.jobless)
    return first


def test_the_housekeeping_is_one_statement_when_there_is_nothing_to_do(
    scene, django_assert_num_queries
):
    from cms.personalization.claims import _housekeeping

    with django_assert_num_queries(1):
        due, jobs_owed = _housekeeping("80250000010000000001")
    assert not jobs_owed
    assert not any((due.expired, due.stale_secrets, due.failed, due.jobless, due.new_codes))


def test_a_queued_request_without_a_job_is_found_and_given_one(scene, virtual_card):
    card_queued(scene, virtual_card)
    first = _flags_agree_with_the_steps()
    assert first.jobless and not (first.expired or first.stale_secrets or first.failed)


def test_a_lease_that_ran_out_is_found(scene, virtual_card, settings):
    from cms.models import PersonalizationJob
    from cms.personalization.claims import station_claim

    card_queued(scene, virtual_card)
    assert station_claim(station=scene.station, identity=_identity(virtual_card)) is not None
    job = PersonalizationJob.objects.get()
    with time_machine.travel(job.lease_expires_at + dt.timedelta(seconds=1)):
        first = _flags_agree_with_the_steps()
    assert first.expired
    job.refresh_from_db()
    assert job.status == "queued"


def test_secrets_kept_for_a_resume_that_will_not_come_are_found(scene, virtual_card):
    from cms.models import CardRequest

    session = interrupted_session(scene, virtual_card)
    assert not _flags_agree_with_the_steps().stale_secrets  # the job can still resume
    CardRequest.objects.filter(jobs__pk=session.job_id).update(status="rejected")
    assert _flags_agree_with_the_steps().stale_secrets


def test_a_failed_request_is_found_when_a_blank_card_is_there(scene, virtual_card):
    from cms.models import Card, CardRequest
    from tests.cms.conftest import card_make

    request = card_queued(scene, virtual_card)
    CardRequest.objects.filter(pk=request.pk).update(status="failed", card=None)
    # No blank card left: it stays failed, and no claim tries to queue it again.
    assert not _flags_agree_with_the_steps().failed
    assert CardRequest.objects.get(pk=request.pk).status == "failed"
    blank = card_make(scene.product)
    Card.objects.filter(pk=blank.pk).update(pool=scene.pool)
    assert _flags_agree_with_the_steps().failed  # a blank card came: queued again on it
    request.refresh_from_db()
    assert (request.status, request.card_id) == ("queued", blank.pk)


def test_a_queued_new_codes_request_is_found_for_its_card_only(scene, make_user):
    from cms.models import NewCodesRequest
    from tests.cms.conftest import card_make

    card = card_make(scene.product, status="ISSUED")
    NewCodesRequest.objects.create(
        card=card,
        reason="forgotten_puk",
        agent=make_user("helpdesk_agent"),
        identity_method="callback",
        identity_reference="test",
        sealed_secrets=b"sealed",
    )
    assert _flags_agree_with_the_steps(card.chip_serial).new_codes
    assert not _flags_agree_with_the_steps("8025000001" + "9" * 10).new_codes
    assert not _flags_agree_with_the_steps(None).new_codes


def test_a_claim_takes_over_a_lease_that_ran_out_before_the_sweep_came(scene, virtual_card):
    """The claim statement itself takes a job whose lease ran out (the housekeeping read came
    just before it did): the running session is interrupted and the release audited before the
    claim, as the sweep would have."""
    from cms.models import PersonalizationJob, PersonalizationSession
    from cms.personalization.claims import job_claim, station_claim
    from cms.personalization.jobs import LEASE_EXPIRED
    from core.models import AuditEvent
    from demo import setup

    card_queued(scene, virtual_card)
    payload = station_claim(station=scene.station, identity=_identity(virtual_card))
    assert payload is not None
    job = PersonalizationJob.objects.get()
    second = setup.station_enrolled(scene.pool, name="station-2").station
    with time_machine.travel(job.lease_expires_at + dt.timedelta(seconds=1)):
        taken = job_claim(station=second, identity=_identity(virtual_card))
    assert taken is not None and taken.pk == job.pk
    job.refresh_from_db()
    assert (job.status, job.station_id, job.attempts) == ("claimed", second.pk, 2)
    assert job.lease_expires_at == taken.lease_expires_at
    session = PersonalizationSession.objects.get(pk=payload["session"])
    assert session.status == "interrupted" and session.error == LEASE_EXPIRED
    events = list(
        AuditEvent.objects.filter(object_id=str(job.pk)).order_by("seq").values_list("action")
    )
    assert events[-2:] == [("personalization.job_release",), ("personalization.job_claim",)]
    claim = AuditEvent.objects.filter(action="personalization.job_claim").order_by("seq").last()
    assert claim is not None
    assert claim.details == {
        "station": str(second.pk),
        "card_id": str(job.card_id),
        "attempt": 2,
        "reader": "inproc",
    }


def test_a_card_reinserted_after_its_lease_ran_out_resumes_its_session(scene, virtual_card):
    """Second claim of the job: the previous session is looked up (first claims skip it)."""
    from cms.models import PersonalizationJob, PersonalizationSession
    from cms.personalization.claims import station_claim

    card_queued(scene, virtual_card)
    first = station_claim(station=scene.station, identity=_identity(virtual_card))
    assert first is not None
    job = PersonalizationJob.objects.get()
    with time_machine.travel(job.lease_expires_at + dt.timedelta(seconds=1)):
        again = station_claim(station=scene.station, identity=_identity(virtual_card))
    assert again is not None and again["session"] != first["session"]
    old = PersonalizationSession.objects.get(pk=first["session"])
    new = PersonalizationSession.objects.get(pk=again["session"])
    assert old.status == "interrupted" and new.status == "running"
    assert bytes(new.sealed_secrets) == bytes(old.sealed_secrets)  # the same PIN/PUK
    assert (new.valid_from, new.valid_until) == (old.valid_from, old.valid_until)


def test_the_jobs_of_one_sync_are_claimed_in_their_requests_order(scene, key_pool):
    from cardsim.card import Card
    from cms.identifiers import luhn_digit
    from cms.personalization.claims import job_claim
    from cms.personalization.jobs import jobs_create

    bodies = [f"999{n:07d}" for n in (1, 2, 3)]
    requests = [
        card_queued(scene, Card.blank("cps4", keygen=key_pool), f"8{body}{luhn_digit(body)}")
        for body in bodies
    ]
    assert jobs_create() == 3
    claimed = [job_claim(station=scene.station, identity=None) for _ in requests]
    assert [job.request_id for job in claimed if job is not None] == [r.pk for r in requests]


def test_a_session_that_cannot_start_leaves_the_job_unclaimed(scene, virtual_card, monkeypatch):
    from cms.models import Card, CardRequest, PersonalizationJob, PersonalizationSession
    from cms.personalization import session as session_module
    from cms.personalization.claims import station_claim
    from core.errors import ServiceUnavailable
    from core.models import AuditEvent

    def unavailable(*args: object, **kwargs: object) -> bytes:
        raise ServiceUnavailable("The card key store is unavailable.")

    request = card_queued(scene, virtual_card)
    monkeypatch.setattr(session_module, "secrets_seal", unavailable)
    with pytest.raises(ServiceUnavailable):
        station_claim(station=scene.station, identity=_identity(virtual_card))
    job = PersonalizationJob.objects.get()
    assert (job.status, job.station_id, job.attempts) == ("queued", None, 0)
    assert not PersonalizationSession.objects.exists()
    assert CardRequest.objects.get(pk=request.pk).status == "queued"
    assert Card.objects.get(pk=request.card_id).status == "ALLOCATED"
    assert not AuditEvent.objects.filter(action="personalization.job_claim").exists()
    monkeypatch.undo()
    answer = station_claim(station=scene.station, identity=_identity(virtual_card))
    assert answer is not None and answer["state"] == "running"


def test_a_claim_keeps_to_its_statement_budget(scene, virtual_card, django_assert_max_num_queries):
    """The claim of a queued card whose job exists, through its first batch: the housekeeping
    read and one transaction for claim, session and first batch (the request's move included,
    its card read once): 11 statements (ADR 0031 and 0034; 22 before the request's move dropped
    its savepoints, 16 while the first batch had a transaction of its own, 13 while its
    checkpoints' write set a savepoint in the claim's; the bench's claim, which also makes its
    job, went from 42 to 29, 23, 18 with the station's row, then 16 and 14)."""
    from cms.personalization.claims import station_claim
    from cms.personalization.jobs import jobs_create

    card_queued(scene, virtual_card)
    assert jobs_create() == 1
    with django_assert_max_num_queries(11):
        answer = station_claim(station=scene.station, identity=_identity(virtual_card))
    assert answer is not None and answer["state"] == "running"


def test_a_claim_whose_first_batch_cannot_be_written_leaves_nothing(
    scene, virtual_card, monkeypatch
):
    """Claim, session and first batch commit together: the database failing as the first batch
    is written leaves the job queued and its card as they were, with no session and no event of
    the attempt (before, the claim stayed, its job held until its lease ran out); the next claim
    starts afresh."""
    from django.db import OperationalError

    from cms.models import Card, CardRequest, PersonalizationJob, PersonalizationSession
    from cms.personalization import session as session_module
    from cms.personalization.claims import station_claim
    from cms.personalization.live import _SESSIONS
    from core.models import AuditEvent

    def lost(*args: object, **kwargs: object) -> int:
        raise OperationalError("the server closed the connection")

    request = card_queued(scene, virtual_card)
    events = AuditEvent.objects.count()
    live = set(_SESSIONS.entries)
    monkeypatch.setattr(session_module, "cpu_take", lost)
    with pytest.raises(OperationalError):
        station_claim(station=scene.station, identity=_identity(virtual_card))
    assert not PersonalizationJob.objects.exclude(status="queued").exists()
    assert not PersonalizationSession.objects.exists()
    assert set(_SESSIONS.entries) == live  # no generator kept for a session that is not there
    assert CardRequest.objects.get(pk=request.pk).status == "queued"
    assert Card.objects.get(pk=request.card_id).status == "ALLOCATED"
    assert AuditEvent.objects.count() == events
    monkeypatch.undo()
    answer = station_claim(station=scene.station, identity=_identity(virtual_card))
    assert answer is not None and answer["state"] == "running"
    assert list(
        AuditEvent.objects.filter(seq__gt=events).order_by("seq").values_list("action", flat=True)
    ) == [
        "personalization.job_create",
        "card.personalize",
        "request.start",
        "personalization.job_claim",
        "personalization.session_start",
        "personalization.checkpoint",
    ]


def test_a_session_that_cannot_begin_is_released_with_its_claim(scene, virtual_card, monkeypatch):
    """The session is made but its program cannot start: the claim is kept and the job released
    (back in the queue, the session interrupted), both committed, and the error raised, as when
    they were two transactions; the next claim resumes it."""
    from cms.models import Card, CardRequest, PersonalizationJob, PersonalizationSession
    from cms.personalization import session as session_module
    from cms.personalization.claims import station_claim
    from core.errors import Conflict
    from core.models import AuditEvent

    def refused(*args: object, **kwargs: object) -> object:
        raise Conflict("This card cannot be written.")

    request = card_queued(scene, virtual_card)
    events = AuditEvent.objects.count()
    monkeypatch.setattr(session_module, "program_inputs", refused)
    with pytest.raises(Conflict):
        station_claim(station=scene.station, identity=_identity(virtual_card))
    job = PersonalizationJob.objects.get()
    assert (job.status, job.station_id, job.attempts) == ("queued", None, 1)
    session = PersonalizationSession.objects.get()
    assert (session.status, session.error) == ("interrupted", "the session could not start")
    assert CardRequest.objects.get(pk=request.pk).status == "personalizing"
    assert Card.objects.get(pk=request.card_id).status == "PERSONALIZING"
    assert list(
        AuditEvent.objects.filter(seq__gt=events).order_by("seq").values_list("action", flat=True)
    ) == [
        "personalization.job_create",
        "card.personalize",
        "request.start",
        "personalization.job_claim",
        "personalization.session_start",
        "personalization.job_release",
    ]
    monkeypatch.undo()
    answer = station_claim(station=scene.station, identity=_identity(virtual_card))
    assert answer is not None and answer["state"] == "running"


def test_a_station_claiming_its_card_again_resumes_it_and_another_station_is_refused(
    scene, virtual_card
):
    """The answer to a claim is lost after the CMS committed it (the connection cut, the station
    restarted): the same station claiming the same card again takes its job back at once, the
    session it never saw interrupted, a new one started; another station, within the lease, is
    still refused."""
    from cms.models import PersonalizationJob, PersonalizationSession
    from cms.personalization.claims import station_claim
    from cms.personalization.jobs import STATION_RECLAIMED
    from core.errors import Conflict
    from core.models import AuditEvent
    from demo import setup

    card_queued(scene, virtual_card)
    lost = station_claim(station=scene.station, identity=_identity(virtual_card))
    assert lost is not None
    second = setup.station_enrolled(scene.pool, name="station-2").station
    with pytest.raises(Conflict, match="being personalized by another station"):
        station_claim(station=second, identity=_identity(virtual_card))

    again = station_claim(station=scene.station, identity=_identity(virtual_card))
    assert again is not None and again["session"] != lost["session"]
    job = PersonalizationJob.objects.get()
    assert (job.status, job.station_id, job.attempts) == ("claimed", scene.station.pk, 2)
    old = PersonalizationSession.objects.get(pk=lost["session"])
    assert old.status == "interrupted" and old.error == STATION_RECLAIMED
    assert PersonalizationSession.objects.get(pk=again["session"]).status == "running"
    release = AuditEvent.objects.filter(action="personalization.job_release").get()
    assert release.details == {"reason": STATION_RECLAIMED, "card_id": str(job.card_id)}
