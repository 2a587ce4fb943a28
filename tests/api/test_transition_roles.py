"""Issue 11 §2: the transition endpoint × every transition × every role, generated from the table.

A person's role gets past the permission check only for the transitions the table gives it; the
steps only the system takes (allocate, personalize, issue, wipe, spoil) are offered to nobody and
refused to everybody, and the card does not move.
"""

from __future__ import annotations

import pytest

from cms import lifecycle
from cms.choices import CardStatus, RequestKind, RequestStatus
from cms.models import Card, CardRequest
from core.models import AuditEvent
from core.roles import Role
from tests.cms.conftest import card_make, cps4, holder, holder_make  # noqa: F401

pytestmark = pytest.mark.django_db


def _body(t: lifecycle.Transition) -> dict[str, str]:
    return {"transition": t.name, **({"reason": "lost"} if t.needs_reason else {})}


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("t", lifecycle.TRANSITIONS, ids=lambda t: t.name)
def test_transition_role_matrix(t, role, api_client_for, cps4):  # noqa: F811
    source = sorted(t.sources)[0]
    card = card_make(cps4, source)
    client = api_client_for(role.value)
    before = AuditEvent.objects.count()
    response = client.post(f"/api/v1/cards/{card.pk}/transition", _body(t), format="json")
    card.refresh_from_db()
    if role in t.roles:
        assert response.status_code in {200, 202}, response.content
        assert card.status == (t.target if response.status_code == 200 else source)
        return
    # A role outside the endpoint is 403; a system step is no choice a person has (400); a
    # person transition of another role is 403 from the service.
    assert response.status_code in {400, 403}, response.content
    if not t.roles:
        assert response.status_code == (400 if role in _ENDPOINT_ROLES else 403)
    assert set(response.json()) == {"message", "extra"}
    assert card.status == source and AuditEvent.objects.count() == before


_ENDPOINT_ROLES = {Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT, Role.SECURITY_OFFICER}


def test_card_detail_never_offers_a_system_step(api_client_for, cps4):  # noqa: F811
    for status in (CardStatus.IN_STOCK, CardStatus.ALLOCATED, CardStatus.PERSONALIZING):
        card = card_make(cps4, status)
        for role in _ENDPOINT_ROLES:
            detail = api_client_for(role.value).get(f"/api/v1/cards/{card.pk}").json()
            assert detail["allowed_transitions"] == [], (status, role)


def test_the_attack_personalize_issue_activate_is_refused(api_client_for, cps4):  # noqa: F811
    """Issue 11 §2 as reproduced: an ALLOCATED, never written card driven to ACTIVE."""
    card = card_make(cps4, CardStatus.ALLOCATED)
    operator = api_client_for("issuance_operator")
    for name in ("personalize", "issue"):
        response = operator.post(
            f"/api/v1/cards/{card.pk}/transition", {"transition": name}, format="json"
        )
        assert response.status_code == 400, response.content
    card.refresh_from_db()
    assert card.status == CardStatus.ALLOCATED


def test_allocation_skips_a_blank_card_left_linked_to_an_old_request(
    api_client_for,
    cps4,  # noqa: F811
    holder,  # noqa: F811
):
    """The jam of issue 11 §2: a card back IN_STOCK still linked to a request made the next
    allocation from its pool raise IntegrityError (500)."""
    stale = card_make(cps4)
    other = holder_make(national_id="810002813847", last_name="DURAND")
    CardRequest.objects.create(
        kind=RequestKind.NEW,
        holder=other,
        product=cps4,
        card=stale,
        status=RequestStatus.FAILED,
        requested_by_label="tests",
    )
    fresh = card_make(cps4)
    alice, bob = api_client_for("issuance_operator"), api_client_for("issuance_operator")
    created = alice.post(
        "/api/v1/requests/create",
        {"holder_id": str(holder.pk), "kind": "new", "product_id": cps4.pk},
        format="json",
    )
    request_id = created.json()["id"]
    assert alice.post(f"/api/v1/requests/{request_id}/submit").status_code == 200
    queued = bob.post(f"/api/v1/requests/{request_id}/queue")
    assert queued.status_code == 200, queued.content
    assert queued.json()["card"] == str(fresh.pk)
    fresh.refresh_from_db()
    assert fresh.status == CardStatus.ALLOCATED and fresh.holder_id == holder.pk
    assert Card.objects.get(pk=stale.pk).status == CardStatus.IN_STOCK
    event = AuditEvent.objects.filter(action="card.allocate").last()
    assert event.actor_kind == "system" and bob.user.username in event.actor_label
