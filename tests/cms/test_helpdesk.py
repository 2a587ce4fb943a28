"""The offline unblock service and API: responses computed in the card key store, identity checks
recorded, bad challenges refused, rate limits and dual control, also under concurrent agents."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from django.db import connection

from cards import unblock
from cards.products import serial_of_card_number
from cms.callers import Caller
from cms.choices import CardStatus
from cms.models import Card, UnblockEvent
from core.errors import PolicyViolation
from core.models import AuditEvent, DualControlAct
from pki.keys.symmetric import SoftwareCardKeyStore
from tests.cms.conftest import card_make

MASTER = bytes(range(32))
PASS_ENV = "HELPDESK_TEST_CARD_KEYS_PASSPHRASE"
CHALLENGE = "0102-0304-0506-0708"
IDENTITY = {"identity_method": "callback", "identity_reference": "+33 1 23 45 67 89"}


@pytest.fixture
def admin_store(settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SoftwareCardKeyStore:
    monkeypatch.setenv(PASS_ENV, "helpdesk-test-passphrase")
    settings.CARD_KEY_STORE = {
        "BACKEND": "software",
        "OPTIONS": {"location": str(tmp_path), "passphrase_env": PASS_ENV},
    }
    store = SoftwareCardKeyStore("t", location=str(tmp_path), passphrase_env=PASS_ENV)
    store.import_key("admin.v1", MASTER)
    settings.HELPDESK_UNBLOCK_CARD_LIMIT = 3
    settings.HELPDESK_UNBLOCK_AGENT_LIMIT = 30
    settings.HELPDESK_UNBLOCK_DUAL_CONTROL_AFTER = 0
    return store


def _card(cps4, status=CardStatus.ACTIVE) -> Card:
    card = card_make(cps4, status)
    card.admin_key_version = 1
    card.save(update_fields=["admin_key_version"])
    return card


def _url(card: Card) -> str:
    return f"/api/v1/helpdesk/cards/{card.pk}/offline-unblock"


def test_the_response_is_the_card_library_s_and_never_recorded(cps4, admin_store, api_client_for):
    card = _card(cps4)
    client = api_client_for("helpdesk_agent")
    answer = client.post(_url(card), {**IDENTITY, "challenge": CHALLENGE}, format="json")
    assert answer.status_code == 200, answer.content
    expected = unblock.response(
        MASTER, serial_of_card_number(card.card_number), 1, bytes.fromhex("0102030405060708")
    )
    body = answer.json()
    assert body["response"] == expected.hex().upper()
    assert body["display"] == unblock.format_code(expected)
    assert answer["Cache-Control"] == "no-store"
    assert body["limits"]["card_used"] == 1
    event = UnblockEvent.objects.get(card=card)
    assert (event.identity_method, event.identity_reference) == ("callback", "+33 1 23 45 67 89")
    audit = AuditEvent.objects.get(action="card.offline_unblock_response")
    assert audit.details["identity_method"] == "callback"
    stored = json.dumps([e.details for e in AuditEvent.objects.all()])
    stored += json.dumps(list(UnblockEvent.objects.values()), default=str)
    assert expected.hex() not in stored.lower()
    state = client.get(f"/api/v1/helpdesk/cards/{card.pk}/unblock-state").json()
    assert (
        state["limits"]["card_used"] == 1 and state["history"][0]["identity_method"] == "callback"
    )
    assert expected.hex() not in json.dumps(state).lower()


@pytest.mark.parametrize(
    "challenge", ["0102030405", "0102-0304-0506-07XY", "01020304050607080910", ""]
)
def test_bad_challenges_get_400_and_no_response(cps4, admin_store, api_client_for, challenge):
    card = _card(cps4)
    answer = api_client_for("helpdesk_agent").post(
        _url(card), {**IDENTITY, "challenge": challenge}, format="json"
    )
    assert answer.status_code == 400
    assert set(answer.json()) == {"message", "extra"}
    assert not UnblockEvent.objects.exists()


def test_an_identity_check_is_required(cps4, admin_store, api_client_for):
    card = _card(cps4)
    client = api_client_for("helpdesk_agent")
    for identity in (
        {"identity_method": "guess", "identity_reference": "x"},
        {"identity_method": "callback", "identity_reference": "   "},
    ):
        answer = client.post(_url(card), {**identity, "challenge": CHALLENGE}, format="json")
        assert answer.status_code == 400
    assert not UnblockEvent.objects.exists()


@pytest.mark.parametrize(
    "status", [CardStatus.REVOKED, CardStatus.ISSUED, CardStatus.EXPIRED, CardStatus.DESTROYED]
)
def test_a_card_not_active_nor_suspended_gets_no_response(
    cps4, admin_store, api_client_for, status
):
    card = _card(cps4, status)
    answer = api_client_for("helpdesk_agent").post(
        _url(card), {**IDENTITY, "challenge": CHALLENGE}, format="json"
    )
    assert answer.status_code == 409
    assert answer.json()["extra"]["status"] == status
    assert not UnblockEvent.objects.exists()


def test_a_suspended_card_is_unblocked_and_a_card_without_admin_key_is_not(
    cps4, admin_store, api_client_for
):
    client = api_client_for("helpdesk_agent")
    suspended = _card(cps4, CardStatus.SUSPENDED)
    ok = client.post(_url(suspended), {**IDENTITY, "challenge": CHALLENGE}, format="json")
    assert ok.status_code == 200
    legacy = card_make(cps4, CardStatus.ACTIVE)
    refused = client.post(_url(legacy), {**IDENTITY, "challenge": CHALLENGE}, format="json")
    assert refused.status_code == 409


def test_the_card_limit_refuses_with_422(cps4, admin_store, api_client_for, settings):
    settings.HELPDESK_UNBLOCK_CARD_LIMIT = 2
    card = _card(cps4)
    client = api_client_for("helpdesk_agent")
    for _ in range(2):
        assert (
            client.post(_url(card), {**IDENTITY, "challenge": CHALLENGE}, format="json").status_code
            == 200
        )
    refused = client.post(_url(card), {**IDENTITY, "challenge": CHALLENGE}, format="json")
    assert refused.status_code == 422
    assert refused.json()["extra"]["limits"]["card_used"] == 2
    assert UnblockEvent.objects.count() == 2


def test_the_agent_limit_refuses_with_422(cps4, admin_store, api_client_for, settings):
    settings.HELPDESK_UNBLOCK_AGENT_LIMIT = 1
    client = api_client_for("helpdesk_agent")
    assert (
        client.post(
            _url(_card(cps4)), {**IDENTITY, "challenge": CHALLENGE}, format="json"
        ).status_code
        == 200
    )
    refused = client.post(_url(_card(cps4)), {**IDENTITY, "challenge": CHALLENGE}, format="json")
    assert refused.status_code == 422
    other = api_client_for("helpdesk_agent")
    assert (
        other.post(
            _url(_card(cps4)), {**IDENTITY, "challenge": CHALLENGE}, format="json"
        ).status_code
        == 200
    )


def test_beyond_the_threshold_a_second_agent_approves_once(
    cps4, admin_store, api_client_for, settings
):
    settings.HELPDESK_UNBLOCK_DUAL_CONTROL_AFTER = 1
    card = _card(cps4)
    first, second = api_client_for("helpdesk_agent"), api_client_for("helpdesk_agent")
    assert (
        first.post(_url(card), {**IDENTITY, "challenge": CHALLENGE}, format="json").status_code
        == 200
    )
    asked = first.post(_url(card), {**IDENTITY, "challenge": CHALLENGE}, format="json")
    assert asked.status_code == 202, asked.content
    assert asked.json()["response"] is None
    act_id = asked.json()["pending_approval"]["id"]
    early = first.post(
        _url(card), {**IDENTITY, "challenge": CHALLENGE, "approval": act_id}, format="json"
    )
    assert early.status_code == 409  # not approved yet
    assert (
        first.post(f"/api/v1/dual-control/acts/{act_id}/approve", {}, format="json").status_code
        == 403
    )
    approved = second.post(f"/api/v1/dual-control/acts/{act_id}/approve", {}, format="json")
    assert approved.status_code == 200, approved.content
    # the approval is the asking agent's, for this card, used once
    stolen = second.post(
        _url(card), {**IDENTITY, "challenge": CHALLENGE, "approval": act_id}, format="json"
    )
    assert stolen.status_code == 403
    used = first.post(
        _url(card), {**IDENTITY, "challenge": CHALLENGE, "approval": act_id}, format="json"
    )
    assert used.status_code == 200 and used.json()["response"]
    again = first.post(
        _url(card), {**IDENTITY, "challenge": CHALLENGE, "approval": act_id}, format="json"
    )
    assert again.status_code == 409
    assert UnblockEvent.objects.filter(card=card).count() == 2
    assert UnblockEvent.objects.get(approval_id=act_id).agent_id is not None


def _race(calls):
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:  # the test inspects what each thread got
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def _respond(card, caller):
    from cms.services.helpdesk import offline_unblock_respond

    return lambda: offline_unblock_respond(
        card_id=card.pk, challenge=CHALLENGE, caller=caller, **IDENTITY
    )


@pytest.mark.django_db(transaction=True)
def test_two_agents_at_once_cannot_both_pass_the_card_limit(cps4, admin_store, make_user, settings):
    settings.HELPDESK_UNBLOCK_CARD_LIMIT = 1
    card = _card(cps4)
    agents = [Caller.for_user(make_user("helpdesk_agent")) for _ in range(2)]
    results = _race([_respond(card, a) for a in agents])
    given = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, PolicyViolation)]
    assert len(given) == 1 and len(refused) == 1, results
    assert UnblockEvent.objects.filter(card=card).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_agents_at_once_cannot_both_skip_the_second_approval(
    cps4, admin_store, make_user, settings
):
    settings.HELPDESK_UNBLOCK_DUAL_CONTROL_AFTER = 1
    card = _card(cps4)
    agents = [Caller.for_user(make_user("helpdesk_agent")) for _ in range(2)]
    results = _race([_respond(card, a) for a in agents])
    assert not any(isinstance(r, Exception) for r in results), results
    responses = [r for r in results if r.response is not None]
    pending = [r for r in results if r.approval is not None]
    assert len(responses) == 1 and len(pending) == 1
    assert DualControlAct.objects.filter(kind="helpdesk.offline_unblock").count() == 1
    assert UnblockEvent.objects.filter(card=card).count() == 1
