"""Every transition of the table, applied and refused, on PostgreSQL (generated from the table)."""

from __future__ import annotations

import pytest

from cms import lifecycle
from cms.callers import Caller
from cms.choices import ApprovalStatus, CardStatus
from cms.models import Card, CardTransitionApproval
from cms.services.cards import card_transition, card_transition_approve
from core.errors import BadInput, Conflict, Forbidden
from core.models import AuditEvent
from tests.cms.conftest import card_make, holder_make

pytestmark = pytest.mark.django_db

ALLOWED = [(t, s) for t in lifecycle.TRANSITIONS for s in sorted(t.sources)]
FORBIDDEN = [
    (t, s)
    for t in lifecycle.TRANSITIONS
    for s in CardStatus
    if s not in t.sources and s != t.target
]


def _args(t: lifecycle.Transition) -> dict[str, object]:
    return {"reason": "lost"} if t.needs_reason else {}


def _who(t: lifecycle.Transition, caller_for) -> Caller:
    """A person holding the transition's first role; the system for a system-only step."""
    if not t.roles:
        return Caller.for_system("tests")
    return caller_for(sorted(t.roles)[0])


def _apply(t, card, caller_for, holder=None):
    """Apply ``t`` as its first role or the system (with a second person for dual control)."""
    outcome = card_transition(
        card_id=card.pk, transition=t.name, caller=_who(t, caller_for), holder=holder, **_args(t)
    )
    if t.dual_control:
        assert not outcome.applied and outcome.approval is not None
        outcome = card_transition_approve(
            approval_id=outcome.approval.pk, caller=_who(t, caller_for)
        )
    return outcome


@pytest.mark.parametrize("t, source", ALLOWED, ids=lambda x: getattr(x, "name", str(x)))
def test_every_allowed_transition_moves_the_card_and_is_audited(t, source, cps4, caller_for):
    card = card_make(cps4, source)
    holder = holder_make(national_id="810002813839") if t.name == "allocate" else None
    outcome = _apply(t, card, caller_for, holder=holder)
    assert outcome.applied
    card.refresh_from_db()
    assert card.status == t.target
    event = AuditEvent.objects.filter(object_type="card", object_id=str(card.pk)).last()
    assert event.action == f"card.{t.name}"
    assert event.details["from"] == source and event.details["to"] == t.target


@pytest.mark.parametrize("t, source", FORBIDDEN, ids=lambda x: getattr(x, "name", str(x)))
def test_every_forbidden_transition_is_409_with_the_allowed_ones(t, source, cps4, caller_for):
    card = card_make(cps4, source)
    before = AuditEvent.objects.count()
    with pytest.raises(Conflict) as info:
        card_transition(card_id=card.pk, transition=t.name, caller=_who(t, caller_for), **_args(t))
    assert info.value.extra["status"] == source
    assert info.value.extra["allowed"] == [x.name for x in lifecycle.allowed_from(source)]
    card.refresh_from_db()
    assert card.status == source and AuditEvent.objects.count() == before
    assert not CardTransitionApproval.objects.exists()


@pytest.mark.parametrize("t", lifecycle.TRANSITIONS, ids=lambda t: t.name)
def test_a_transition_repeated_is_a_noop(t, cps4, caller_for):
    assert t.target not in t.sources  # the table has no self-loop: "already there" is a no-op
    card = card_make(cps4, t.target)
    before = AuditEvent.objects.count()
    outcome = card_transition(
        card_id=card.pk, transition=t.name, caller=_who(t, caller_for), **_args(t)
    )
    assert not outcome.applied and outcome.approval is None
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("t", lifecycle.TRANSITIONS, ids=lambda t: t.name)
def test_roles_outside_the_transition_are_refused(t, cps4, caller_for):
    others = [r for r in ("issuance_operator", "helpdesk_agent", "security_officer", "auditor",
                          "station") if r not in t.roles]  # fmt: skip
    card = card_make(cps4, sorted(t.sources)[0])
    for role in others:
        with pytest.raises(Forbidden):
            card_transition(card_id=card.pk, transition=t.name, caller=caller_for(role), **_args(t))
    card.refresh_from_db()
    assert card.status == sorted(t.sources)[0]


SYSTEM_STEPS = ("allocate", "personalize", "issue", "wipe", "spoil")


def test_the_system_steps_belong_to_no_person():
    """Issue 11 §2: allocation, personalization, issue, wipe and spoil are the system's."""
    for name in SYSTEM_STEPS:
        t = lifecycle.BY_NAME[name]
        assert t.system and not t.roles, name
    assert {t.name for t in lifecycle.person_transitions()}.isdisjoint(SYSTEM_STEPS)


@pytest.mark.parametrize("name", SYSTEM_STEPS)
@pytest.mark.parametrize(
    "role", ["issuance_operator", "helpdesk_agent", "security_officer", "auditor", "station"]
)
def test_no_person_drives_a_system_step(name, role, cps4, caller_for):
    """The attack of issue 11 §2: an operator driving allocate/personalize/issue/wipe/spoil."""
    t = lifecycle.BY_NAME[name]
    source = sorted(t.sources)[0]
    card = card_make(cps4, source)
    holder = holder_make(national_id="810002813839") if name == "allocate" else None
    before = AuditEvent.objects.count()
    with pytest.raises(Forbidden, match="system"):
        card_transition(card_id=card.pk, transition=name, caller=caller_for(role), holder=holder)
    card.refresh_from_db()
    assert card.status == source and AuditEvent.objects.count() == before


def test_system_caller_applies_system_transitions_without_approval(cps4, system):
    card = card_make(cps4, CardStatus.ACTIVE)
    assert card_transition(card_id=card.pk, transition="expire", caller=system).applied
    with pytest.raises(Forbidden):
        card_transition(card_id=card.pk, transition="destroy", caller=system)


def test_revoke_without_reason_or_with_an_unknown_one_is_bad_input(cps4, caller_for):
    card = card_make(cps4, CardStatus.ACTIVE)
    helpdesk = caller_for("helpdesk_agent")
    with pytest.raises(BadInput):
        card_transition(card_id=card.pk, transition="revoke", caller=helpdesk)
    with pytest.raises(BadInput):
        card_transition(card_id=card.pk, transition="revoke", caller=helpdesk, reason="bored")
    card.refresh_from_db()
    assert card.status == CardStatus.ACTIVE


def test_revoke_records_the_reason(cps4, caller_for):
    card = card_make(cps4, CardStatus.ACTIVE)
    card_transition(
        card_id=card.pk, transition="revoke", caller=caller_for("helpdesk_agent"), reason="stolen"
    )
    card.refresh_from_db()
    assert card.status == CardStatus.REVOKED and card.revoke_reason == "stolen"


def test_allocation_numbers_the_card_with_its_chip_serial_and_binds_the_holder(
    cps4, holder, system
):
    card = card_make(cps4)
    card_transition(card_id=card.pk, transition="allocate", caller=system, holder=holder)
    card.refresh_from_db()
    assert card.holder == holder and card.card_type == "CPS"
    assert card.card_number == card.chip_serial
    assert card.card_number.startswith("8025000001") and len(card.card_number) == 20


def test_a_chip_serial_that_is_no_cps_serial_gets_no_number(cps4, holder, system):
    card = card_make(cps4)
    Card.objects.filter(pk=card.pk).update(chip_serial="00112233445566778899")
    with pytest.raises(Conflict) as refused:
        card_transition(card_id=card.pk, transition="allocate", caller=system, holder=holder)
    assert "no CPS serial" in refused.value.message
    card.refresh_from_db()
    assert card.status == CardStatus.IN_STOCK and card.card_number is None


def test_wipe_returns_a_blank_card_and_drops_its_number(cps4, system):
    card = card_make(cps4, CardStatus.PERSONALIZING)
    card_transition(card_id=card.pk, transition="wipe", caller=system)
    card.refresh_from_db()
    assert card.status == CardStatus.IN_STOCK
    assert card.holder is None and card.card_number is None


class TestDualControl:
    def test_the_requester_cannot_approve_their_own_transition(self, cps4, caller_for):
        card = card_make(cps4, CardStatus.SUSPENDED)
        alice = caller_for("helpdesk_agent")
        outcome = card_transition(card_id=card.pk, transition="reinstate", caller=alice)
        assert not outcome.applied
        with pytest.raises(Forbidden):
            card_transition_approve(approval_id=outcome.approval.pk, caller=alice)
        card.refresh_from_db()
        assert card.status == CardStatus.SUSPENDED

    def test_a_second_person_approves_and_is_recorded(self, cps4, caller_for):
        card = card_make(cps4, CardStatus.SUSPENDED)
        alice, bob = caller_for("helpdesk_agent"), caller_for("security_officer")
        pending = card_transition(card_id=card.pk, transition="reinstate", caller=alice).approval
        again = card_transition(card_id=card.pk, transition="reinstate", caller=alice).approval
        assert again.pk == pending.pk  # asking twice records one request
        done = card_transition_approve(approval_id=pending.pk, caller=bob)
        assert done.applied
        pending.refresh_from_db()
        assert pending.status == ApprovalStatus.APPROVED and pending.decided_by_id == bob.user_id
        event = AuditEvent.objects.filter(action="card.reinstate").get()
        assert event.actor_label == bob.actor.label
        assert event.details["requested_by"] == alice.actor.label
        before = AuditEvent.objects.count()
        assert not card_transition_approve(approval_id=pending.pk, caller=bob).applied
        assert AuditEvent.objects.count() == before

    def test_an_approver_without_a_role_of_the_transition_is_refused(self, cps4, caller_for):
        card = card_make(cps4, CardStatus.REVOKED)
        pending = card_transition(
            card_id=card.pk, transition="destroy", caller=caller_for("security_officer")
        ).approval
        with pytest.raises(Forbidden):
            card_transition_approve(approval_id=pending.pk, caller=caller_for("helpdesk_agent"))

    def test_approval_after_the_card_moved_on_is_409(self, cps4, caller_for):
        card = card_make(cps4, CardStatus.SUSPENDED)
        pending = card_transition(
            card_id=card.pk, transition="reinstate", caller=caller_for("helpdesk_agent")
        ).approval
        card_transition(
            card_id=card.pk, transition="revoke", caller=caller_for("helpdesk_agent"), reason="lost"
        )
        with pytest.raises(Conflict):
            card_transition_approve(approval_id=pending.pk, caller=caller_for("security_officer"))


def test_one_card_in_service_per_holder_and_type_is_a_database_rule(cps4, holder, caller_for):
    card_make(cps4, CardStatus.ACTIVE, holder=holder)
    issued = card_make(cps4, CardStatus.ISSUED, holder=holder)
    with pytest.raises(Conflict):
        card_transition(
            card_id=issued.pk, transition="activate", caller=caller_for("helpdesk_agent")
        )
    issued.refresh_from_db()
    assert issued.status == CardStatus.ISSUED
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Card.objects.filter(pk=issued.pk).update(status=CardStatus.SUSPENDED)


def test_a_legacy_card_in_migration_overlap_does_not_count(cps4, cps3, holder, caller_for):
    legacy = card_make(cps3, CardStatus.ACTIVE, holder=holder)
    legacy.migration_overlap = True
    legacy.save()
    new = card_make(cps4, CardStatus.ISSUED, holder=holder)
    assert card_transition(
        card_id=new.pk, transition="activate", caller=caller_for("helpdesk_agent")
    ).applied


def test_a_transition_writes_what_save_would(cps4):
    """The transition's UPDATE is built from the fields it names (not ``save()``): it holds
    while Card has no field that ``save()`` alone would fill."""
    assert not [f.name for f in Card._meta.concrete_fields if getattr(f, "auto_now", False)]
    card = card_make(cps4)
    holder = holder_make(national_id="810002813839")
    card_transition(
        card_id=card.pk, transition="allocate", caller=Caller.for_system("tests"), holder=holder
    )
    stored = Card.objects.get(pk=card.pk)
    assert (stored.status, stored.holder_id, stored.card_type) == (
        CardStatus.ALLOCATED,
        holder.pk,
        holder.card_type,
    )
    assert stored.card_number and stored.status_changed_at is not None
