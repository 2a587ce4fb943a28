"""Card requests: the flow to an issued card, four eyes, idempotency, policy refusals."""

from __future__ import annotations

import pytest

from cms.choices import CardStatus, RequestStatus
from cms.models import Card, SitePool
from cms.services import requests as svc
from cms.services.cards import card_transition
from core.errors import BadInput, Conflict, Forbidden, PolicyViolation
from core.models import AuditEvent
from tests.cms.conftest import card_make

pytestmark = pytest.mark.django_db


def _new(holder, product, caller, **kw):
    return svc.request_create(
        holder_id=holder.pk, kind=kw.pop("kind", "new"), product_id=product.pk, caller=caller, **kw
    )


def test_a_new_card_request_goes_from_draft_to_an_issued_card(cps4, holder, caller_for, system):
    blank = card_make(cps4)
    operator = caller_for("issuance_operator")
    request = _new(holder, cps4, operator)
    assert request.status == RequestStatus.DRAFT and not request.requires_second_approval
    request = svc.request_submit(request_id=request.pk, caller=operator)
    assert request.status == RequestStatus.APPROVED  # no second approver needed for this one
    request = svc.request_queue(request_id=request.pk, caller=system)
    assert request.status == RequestStatus.QUEUED and request.card_id == blank.pk
    svc.request_personalization_start(request_id=request.pk, caller=system)
    request = svc.request_complete(request_id=request.pk, caller=system)
    assert request.status == RequestStatus.DONE
    blank.refresh_from_db()
    assert blank.status == CardStatus.ISSUED and blank.holder == holder


def test_every_request_service_called_twice_is_a_noop_the_second_time(
    cps4, holder, caller_for, system
):
    card_make(cps4)
    operator = caller_for("issuance_operator")
    steps = [
        lambda r: svc.request_submit(request_id=r.pk, caller=operator),
        lambda r: svc.request_queue(request_id=r.pk, caller=system),
        lambda r: svc.request_personalization_start(request_id=r.pk, caller=system),
        lambda r: svc.request_complete(request_id=r.pk, caller=system),
    ]
    request = _new(holder, cps4, operator)
    before = AuditEvent.objects.count()
    assert _new(holder, cps4, operator).pk == request.pk
    assert AuditEvent.objects.count() == before
    for step in steps:
        first = step(request)
        count = AuditEvent.objects.count()
        second = step(request)
        assert (second.status, second.card_id) == (first.status, first.card_id)
        assert AuditEvent.objects.count() == count


def test_a_replacement_waits_for_a_second_person_and_the_requester_cannot_approve(
    cps4, holder, caller_for
):
    old = card_make(cps4, CardStatus.REVOKED, holder=holder)
    alice, bob = caller_for("helpdesk_agent"), caller_for("issuance_operator")
    request = _new(holder, cps4, alice, kind="replacement", replaces_card_id=old.pk)
    assert request.requires_second_approval
    request = svc.request_submit(request_id=request.pk, caller=alice)
    assert request.status == RequestStatus.SUBMITTED
    with pytest.raises(Forbidden):
        svc.request_approve(request_id=request.pk, caller=alice)
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED and request.approved_by_id is None
    request = svc.request_approve(request_id=request.pk, caller=bob)
    assert request.status == RequestStatus.APPROVED and request.approved_by_id == bob.user_id
    count = AuditEvent.objects.count()
    assert svc.request_approve(request_id=request.pk, caller=bob).status == RequestStatus.APPROVED
    assert AuditEvent.objects.count() == count


def test_a_requester_who_is_also_an_approver_still_cannot_approve(cps4, holder, make_user):
    from cms.callers import Caller

    both = Caller.for_user(make_user("issuance_operator", "security_officer"))
    cps4.requires_second_approval = True
    cps4.save()
    request = _new(holder, cps4, both)
    svc.request_submit(request_id=request.pk, caller=both)
    with pytest.raises(Forbidden):
        svc.request_approve(request_id=request.pk, caller=both)


@pytest.mark.parametrize("kind", ["renewal", "replacement"])
def test_a_second_card_for_the_holder_needs_a_second_approver(kind, cps4, holder, caller_for):
    """Issue 11 §4: a replacement filed as a "renewal" of the same card by the same operator
    was approved at once. Every kind that puts a second card in the holder's hands waits."""
    old = card_make(cps4, CardStatus.ACTIVE, holder=holder)
    card_make(cps4)
    operator = caller_for("issuance_operator")
    request = _new(holder, cps4, operator, kind=kind, replaces_card_id=old.pk)
    request = svc.request_submit(request_id=request.pk, caller=operator)
    assert request.requires_second_approval and request.status == RequestStatus.SUBMITTED
    with pytest.raises(Conflict):
        svc.request_queue(request_id=request.pk, caller=operator)
    with pytest.raises(Forbidden):
        svc.request_approve(request_id=request.pk, caller=operator)
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED and request.card_id is None


def test_rejection_and_withdrawal(cps4, holder, caller_for):
    alice = caller_for("helpdesk_agent")
    cps4.requires_second_approval = True
    cps4.save()
    request = _new(holder, cps4, alice)
    svc.request_submit(request_id=request.pk, caller=alice)
    with pytest.raises(Forbidden):
        svc.request_reject(request_id=request.pk, caller=caller_for("helpdesk_agent"))
    request = svc.request_reject(request_id=request.pk, caller=alice, note="typo")
    assert request.status == RequestStatus.REJECTED
    with pytest.raises(Conflict) as info:
        svc.request_approve(request_id=request.pk, caller=caller_for("security_officer"))
    assert info.value.extra["allowed"] == []


def test_renewal_supersedes_the_old_card_when_the_new_one_is_activated(
    cps4, holder, caller_for, system
):
    old = card_make(cps4, CardStatus.ACTIVE, holder=holder)
    card_make(cps4)
    operator = caller_for("issuance_operator")
    request = _new(holder, cps4, operator, kind="renewal", replaces_card_id=old.pk)
    svc.request_submit(request_id=request.pk, caller=operator)
    svc.request_approve(request_id=request.pk, caller=caller_for("security_officer"))
    request = svc.request_queue(request_id=request.pk, caller=system)
    svc.request_personalization_start(request_id=request.pk, caller=system)
    svc.request_complete(request_id=request.pk, caller=system)
    old.refresh_from_db()
    assert old.status == CardStatus.ACTIVE  # nobody is left without a working card
    card_transition(card_id=request.card_id, transition="activate", caller=operator)
    old.refresh_from_db()
    assert (old.status, old.revoke_reason) == (CardStatus.REVOKED, "superseded")
    assert Card.objects.get(pk=request.card_id).status == CardStatus.ACTIVE


def test_failed_personalization_wipes_the_card_and_the_request_is_queued_again(
    cps4, holder, caller_for, system
):
    first, second = card_make(cps4), card_make(cps4)
    operator = caller_for("issuance_operator")
    request = _new(holder, cps4, operator)
    svc.request_submit(request_id=request.pk, caller=operator)
    svc.request_queue(request_id=request.pk, caller=system)
    svc.request_personalization_start(request_id=request.pk, caller=system)
    request = svc.request_fail(request_id=request.pk, caller=system, spoiled=True)
    assert request.status == RequestStatus.FAILED and request.card_id is None
    first.refresh_from_db()
    assert first.status == CardStatus.SPOILED
    request = svc.request_queue(request_id=request.pk, caller=system)
    assert request.card_id == second.pk


def test_queue_without_stock_in_the_pool_is_409_and_changes_nothing(
    cps4, holder, caller_for, system
):
    pool = SitePool.objects.create(code="lyon", name="Lyon")
    blank = card_make(cps4)  # in no pool
    operator = caller_for("issuance_operator")
    request = _new(holder, cps4, operator, pool_id=pool.pk)
    svc.request_submit(request_id=request.pk, caller=operator)
    with pytest.raises(Conflict):
        svc.request_queue(request_id=request.pk, caller=system)
    request.refresh_from_db()
    blank.refresh_from_db()
    assert request.status == RequestStatus.APPROVED and blank.status == CardStatus.IN_STOCK


def test_policy_refusals(cps4, cps3, holder, caller_for):
    operator = caller_for("issuance_operator")
    with pytest.raises(PolicyViolation):
        _new(holder, cps3, operator)  # legacy products are never newly issued
    card_make(cps4, CardStatus.ACTIVE, holder=holder)
    with pytest.raises(PolicyViolation):
        _new(holder, cps4, operator)  # already has a card in service
    with pytest.raises(BadInput):
        _new(holder, cps4, operator, kind="renewal")  # names no card
    holder.status = "deceased"
    holder.save()
    with pytest.raises(PolicyViolation):
        _new(holder, cps4, operator, kind="replacement")


def test_auditors_cannot_open_requests(cps4, holder, caller_for):
    with pytest.raises(Forbidden):
        _new(holder, cps4, caller_for("auditor"))
