"""The services on a card's personalization path join their caller's transaction without
savepoints (ADR 0034): a failure inside them still undoes everything they did, up to the
caller's nearest savepoint; where a caller may catch the error and go on, the savepoint stays."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from cms import effects
from cms.choices import CardStatus, RequestStatus
from cms.models import Card, CardCertificate, CardRequest
from cms.services import cards as card_services
from cms.services import requests as svc
from cms.services.cards import card_transition
from core.actors import Actor
from core.errors import Conflict
from core.models import AuditEvent
from pki.domain.names import Holder as CertificateHolder
from pki.models import Certificate
from tests.cms.conftest import card_make

pytestmark = pytest.mark.django_db

_numbers = itertools.count(1)


class Boom(Exception):
    pass


def _queued(cps4, holder, caller_for, system) -> CardRequest:
    card_make(cps4)
    operator = caller_for("issuance_operator")
    request = svc.request_create(
        holder_id=holder.pk, kind="new", product_id=cps4.pk, caller=operator
    )
    svc.request_submit(request_id=request.pk, caller=operator)
    return svc.request_queue(request_id=request.pk, caller=system)


def _savepoints(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "SAVEPOINT" in q["sql"].upper()]


def test_the_start_of_personalization_sets_no_savepoint_and_a_failure_undoes_it_all(
    cps4, holder, caller_for, system, monkeypatch
):
    request = _queued(cps4, holder, caller_for, system)
    events = AuditEvent.objects.count()
    # The request's own audit event fails: after the card's UPDATE and its audit event.
    real_audit = svc._audit

    def failing(request, caller, action, **details):
        if action == "start":
            raise Boom
        real_audit(request, caller, action, **details)

    monkeypatch.setattr(svc, "_audit", failing)
    with pytest.raises(Boom), transaction.atomic():
        svc.request_personalization_start(request_id=request.pk, caller=system)
    assert Card.objects.get(pk=request.card_id).status == CardStatus.ALLOCATED
    assert CardRequest.objects.get(pk=request.pk).status == RequestStatus.QUEUED
    assert AuditEvent.objects.count() == events

    monkeypatch.undo()
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        started = svc.request_personalization_start(request_id=request.pk, caller=system)
    assert started.status == RequestStatus.PERSONALIZING
    assert Card.objects.get(pk=request.card_id).status == CardStatus.PERSONALIZING
    assert _savepoints(queries) == []


def test_the_completion_sets_no_savepoint_and_a_failure_undoes_it_all(
    cps4, holder, caller_for, system, monkeypatch
):
    request = _queued(cps4, holder, caller_for, system)
    svc.request_personalization_start(request_id=request.pk, caller=system)
    events = AuditEvent.objects.count()

    def failing(**kwargs):
        raise Boom  # the card's effects, after its UPDATE

    monkeypatch.setattr(card_services.effects, "apply", failing)
    with pytest.raises(Boom), transaction.atomic():
        svc.request_complete(request_id=request.pk, caller=system)
    card = Card.objects.get(pk=request.card_id)
    assert card.status == CardStatus.PERSONALIZING and card.issued_at is None
    assert CardRequest.objects.get(pk=request.pk).status == RequestStatus.PERSONALIZING
    assert AuditEvent.objects.count() == events

    monkeypatch.undo()
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        done = svc.request_complete(request_id=request.pk, caller=system)
    assert done.status == RequestStatus.DONE
    # The card handed on is the one locked and issued, as the database has it.
    assert done.card is not None and done.card.status == CardStatus.ISSUED
    assert Card.objects.get(pk=request.card_id).issued_at == done.card.issued_at
    assert _savepoints(queries) == []


def test_a_card_coming_into_service_keeps_its_savepoint_so_a_caller_can_go_on(
    cps4, holder, caller_for
):
    """The one card in service per holder and type: the refused UPDATE is a Conflict that a
    caller of the public service may catch inside its transaction and go on from (its own
    savepoint, and the UPDATE's, where it can break the constraint)."""
    card_make(cps4, CardStatus.ACTIVE, holder=holder)
    second = card_make(cps4, CardStatus.ISSUED, holder=holder)
    with transaction.atomic():
        with pytest.raises(Conflict):
            card_transition(
                card_id=second.pk, transition="activate", caller=caller_for("issuance_operator")
            )
        # the transaction is still usable: the savepoint took the failed UPDATE away
        assert Card.objects.get(pk=second.pk).status == CardStatus.ISSUED


def _cert_holder() -> CertificateHolder:
    """A holder of its own for each test's certificates (distinct serials and identifiers)."""
    n = next(_numbers)
    return CertificateHolder(
        national_id=f"8109{n:08d}",
        surname="DUPONT",
        given_name="JEAN",
        title="Médecin",
        card_serial=f"9{n:09d}",
        profession_code=10,
        email=f"jean.dupont.sp{n}@example.org",
    )


def test_a_card_certificate_sets_no_savepoint_and_a_failure_undoes_every_one(
    authority, holder_key, cps4, holder
):
    card = card_make(cps4, CardStatus.PERSONALIZING, holder=holder)
    cert_holder = _cert_holder()
    certificates, events = Certificate.objects.count(), AuditEvent.objects.count()

    def issue(slot: str) -> None:
        effects.card_certificate_issue(
            card=card,
            slot=slot,
            authority=authority.short_name,
            profile=f"cps_{slot}",
            public_key=holder_key.public_key(),
            holder=cert_holder,
            actor=Actor.system("tests"),
        )

    with pytest.raises(Boom), transaction.atomic():
        issue("auth")
        issue("sign")
        raise Boom  # what comes after the certificates fails
    assert Certificate.objects.count() == certificates
    assert not CardCertificate.objects.filter(card=card).exists()
    assert AuditEvent.objects.count() == events

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        issue("auth")
        issue("sign")
    assert CardCertificate.objects.filter(card=card).count() == 2
    assert _savepoints(queries) == []


def test_a_card_s_certificates_at_once_lock_their_ca_once_set_no_savepoint_and_undo_together(
    authority, holder_key, cps4, holder
):
    card = card_make(cps4, CardStatus.PERSONALIZING, holder=holder)
    cert_holder = _cert_holder()
    keys = {
        slot: effects.KeyToCertify(authority.short_name, f"cps_{slot}", holder_key.public_key())
        for slot in ("auth", "sign")
    }
    certificates, events = Certificate.objects.count(), AuditEvent.objects.count()

    def issue() -> dict[str, Certificate]:
        return effects.card_certificates_issue(
            card=card, keys=keys, holder=cert_holder, actor=Actor.system("tests")
        )

    with pytest.raises(Boom), transaction.atomic():
        issue()
        raise Boom  # what comes after the certificates fails
    assert Certificate.objects.count() == certificates
    assert not CardCertificate.objects.filter(card=card).exists()
    assert AuditEvent.objects.count() == events

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        issued = issue()
    links = {link.slot: link.certificate_id for link in CardCertificate.objects.filter(card=card)}
    assert links == {slot: cert.pk for slot, cert in issued.items()}
    assert {slot: cert.profile for slot, cert in issued.items()} == {
        "auth": "cps_auth",
        "sign": "cps_sign",
    }
    assert all(cert.status == "on_hold" for cert in issued.values())
    assert _savepoints(queries) == []
    share_locks = [q["sql"] for q in queries.captured_queries if "FOR SHARE" in q["sql"]]
    assert len(share_locks) == 1  # both certificates come from the one CA
    issue_events = AuditEvent.objects.filter(action="pki.certificate_issue").order_by("-seq")[:2]
    assert [(e.object_id, e.details["profile"], e.details["on_hold"]) for e in issue_events][
        ::-1
    ] == [(str(issued[slot].pk), f"cps_{slot}", True) for slot in ("auth", "sign")]
