"""Dual control: a second person approves, then the act runs once, in the approval's transaction."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_event_create
from core.dual_control import (
    ActKind,
    act_approve,
    act_cancel,
    act_refuse,
    act_request,
    register,
)
from core.errors import BadInput, Conflict, Forbidden
from core.models import AuditEvent, DualControlAct
from core.roles import Role

CALLS: list[dict[str, Any]] = []


def _validate(params: Any) -> str:
    if "target" not in params:
        raise BadInput("Name the target.")
    return f"test act on {params['target']}"


def _handler(act: DualControlAct, requester: Actor, approver: Actor) -> dict[str, Any]:
    if act.params.get("fail"):
        # Something written before the failure must be rolled back with it.
        audit_event_create(
            actor=approver, action="test.partial", object_type="t", object_id=str(act.pk)
        )
        raise Conflict("the act cannot run now")
    CALLS.append({"act": act.pk, "by": approver.label, "for": requester.label})
    audit_event_create(
        actor=approver, action="test.done", object_type="t", object_id=act.params["target"]
    )
    return {"done": act.params["target"]}


register(
    ActKind(
        name="test.act",
        role=Role.SECURITY_OFFICER,
        label="Test act",
        handler=_handler,
        validate=_validate,
    )
)


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


@pytest.fixture
def officers(make_user: Any) -> tuple[Any, Any]:
    return make_user("security_officer"), make_user("security_officer")


def _request(user: Any, **params: Any) -> DualControlAct:
    return act_request(
        kind="test.act", params={"target": "x", **params}, user=user, reason="a test"
    )


@pytest.mark.django_db
def test_a_second_officer_approves_and_the_act_runs_once(officers: Any) -> None:
    alice, bob = officers
    act = _request(alice)
    assert act.status == "pending" and act.summary == "test act on x" and not CALLS
    with pytest.raises(Forbidden, match="second person"):
        act_approve(act_id=act.pk, user=alice)
    done = act_approve(act_id=act.pk, user=bob, note="checked")
    assert done.status == "executed" and done.result == {"done": "x"}
    assert CALLS[:] == [{"act": act.pk, "by": bob.username, "for": alice.username}]
    with pytest.raises(Conflict, match="already"):
        act_approve(act_id=act.pk, user=bob)
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions == ["dual_control.requested", "test.done", "dual_control.approved"]


@pytest.mark.django_db
def test_the_approver_must_hold_the_role(officers: Any, make_user: Any) -> None:
    alice, _ = officers
    act = _request(alice)
    with pytest.raises(Forbidden, match="security officer"):
        act_approve(act_id=act.pk, user=make_user("issuance_operator"))
    with pytest.raises(Forbidden):
        _request(make_user("auditor"))
    assert not CALLS


@pytest.mark.django_db
def test_bad_params_and_missing_reason_are_refused(officers: Any) -> None:
    alice, _ = officers
    with pytest.raises(BadInput, match="target"):
        act_request(kind="test.act", params={}, user=alice, reason="r")
    with pytest.raises(BadInput, match="reason"):
        act_request(kind="test.act", params={"target": "x"}, user=alice, reason="  ")
    with pytest.raises(BadInput, match="Unknown"):
        act_request(kind="nope", params={}, user=alice, reason="r")
    assert not DualControlAct.objects.exists()


@pytest.mark.django_db
def test_a_failing_handler_leaves_the_act_pending_and_nothing_written(officers: Any) -> None:
    alice, bob = officers
    act = _request(alice, fail=True)
    with pytest.raises(Conflict, match="cannot run"):
        act_approve(act_id=act.pk, user=bob)
    act.refresh_from_db()
    assert act.status == "pending"
    assert not AuditEvent.objects.filter(action__in=["test.partial", "dual_control.approved"])


@pytest.mark.django_db
def test_refuse_cancel_and_expiry(officers: Any) -> None:
    alice, bob = officers
    act = _request(alice)
    with pytest.raises(BadInput):
        act_refuse(act_id=act.pk, user=bob, note="")
    assert act_refuse(act_id=act.pk, user=bob, note="no").status == "refused"

    act = _request(alice)
    with pytest.raises(Forbidden):
        act_cancel(act_id=act.pk, user=bob)
    assert act_cancel(act_id=act.pk, user=alice).status == "cancelled"

    act = _request(alice)
    DualControlAct.objects.filter(pk=act.pk).update(expires_at=timezone.now() - timedelta(1))
    with pytest.raises(Conflict, match="in time"):
        act_approve(act_id=act.pk, user=bob)
    act.refresh_from_db()
    assert act.status == "expired" and not CALLS
    assert AuditEvent.objects.filter(action="dual_control.expired").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_approvals_at_once_run_the_act_once(make_user: Any) -> None:
    alice = make_user("security_officer")
    approvers = [make_user("security_officer"), make_user("security_officer")]
    act = _request(alice)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def approve(user: Any) -> None:
        try:
            barrier.wait()
            act_approve(act_id=act.pk, user=user)
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(u,)) for u in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "ok"]
    assert len(CALLS) == 1


@pytest.mark.django_db
def test_the_api_queue_approve_and_refuse(api_client_for: Any) -> None:
    alice = api_client_for("security_officer")
    bob = api_client_for("security_officer")
    operator = api_client_for("issuance_operator")
    act = _request(alice.user)

    listed = bob.get("/api/v1/dual-control/acts")
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json()["results"]] == [act.pk]
    assert listed.json()["results"][0]["requested_by"] == alice.user.username
    # An operator's roles decide no test act: the queue is empty for them.
    assert operator.get("/api/v1/dual-control/acts").json()["results"] == []

    own = alice.post(f"/api/v1/dual-control/acts/{act.pk}/approve", {}, format="json")
    assert own.status_code == 403 and "second person" in own.json()["message"]
    ok = bob.post(f"/api/v1/dual-control/acts/{act.pk}/approve", {"note": "ok"}, format="json")
    assert ok.status_code == 200 and ok.json()["status"] == "executed"
    again = bob.post(f"/api/v1/dual-control/acts/{act.pk}/refuse", {"note": "x"}, format="json")
    assert again.status_code == 409
    missing = bob.post("/api/v1/dual-control/acts/999999/approve", {}, format="json")
    assert missing.status_code == 404
