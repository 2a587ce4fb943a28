"""New codes against really personalized virtual cards, in process (real views, PostgreSQL, the
station relay): a helpdesk agent files the request, the station serves it inside SCP03, the old
PUK stops working, the new PIN (read from the sealed mailer) verifies, the unprinted issuance
mailer is voided; a session torn after the card wrote the codes is served again to the same end;
dual control, cancellation and bad input."""

from __future__ import annotations

import pytest

from cards.products import CPS4
from tests.cms.personalization.conftest import card_queued, link_of
from tests.cms.personalization.tear_plan import STATION_IDENTIFICATION_APDUS

pytestmark = pytest.mark.django_db(transaction=True)

IDENTITY = {"identity_method": "callback", "identity_reference": "called 01 23 45 67 89"}


def _issue(scene, virtual_card):
    from cms.models import Card
    from cms.services.cards import card_transition
    from personalization_station.relay import personalize

    request = card_queued(scene, virtual_card)
    assert personalize(scene.api(), link_of(virtual_card)).state == "done"
    card_transition(card_id=request.card_id, transition="activate", caller=scene.operator)
    return Card.objects.get(pk=request.card_id)


def _codes(mailer):
    from cms.mailers.services import _unseal

    return _unseal(mailer)


def _sw(card, hexa: str, data: bytes = b"") -> int:
    raw = card.transmit(bytes.fromhex(hexa) + data)
    return int.from_bytes(raw[-2:], "big")


def _puk_refused(card, puk: str) -> bool:
    """RESET RETRY COUNTER (P1 01: PUK only) with ``puk`` is refused by the card."""
    return _sw(card, "002C018108", puk.encode()) & 0xFFF0 == 0x63C0


def _file(agent, card_row, reason="forgotten_puk"):
    return agent.post(
        f"/api/v1/helpdesk/cards/{card_row.pk}/new-codes",
        {**IDENTITY, "reason": reason},
        format="json",
    )


def test_new_codes_are_written_mailed_and_the_old_ones_stop_working(
    scene, virtual_card, api_client_for
):
    from cms.models import NewCodesRequest, PinMailer, UnblockEvent
    from core.models import AuditEvent
    from personalization_station.relay import personalize

    row = _issue(scene, virtual_card)
    issuance = PinMailer.objects.get(card=row)
    old = _codes(issuance)
    agent = api_client_for("helpdesk_agent")

    filed = _file(agent, row)
    assert filed.status_code == 201, filed.content
    assert filed.json()["status"] == "queued" and filed.json()["mailer"] is None
    request = NewCodesRequest.objects.get(pk=filed.json()["id"])
    assert request.sealed_secrets is not None
    assert _file(agent, row).status_code == 409  # one open request per card

    virtual_card.remove()
    virtual_card.insert()
    outcome = personalize(scene.api(), link_of(virtual_card))
    assert outcome.state == "done", outcome.message
    assert outcome.round_trips == 3  # the claim (first batch), its answer, the outcome

    request.refresh_from_db()
    row.refresh_from_db()
    assert request.status == "done" and request.sealed_secrets is None
    tries = (CPS4.pin.tries, CPS4.puk.tries if CPS4.puk else None)
    assert (request.pin_tries_left, request.puk_tries_left) == tries
    assert (row.pin_tries_left, row.puk_tries_left) == tries
    issuance.refresh_from_db()
    assert issuance.status == "voided" and issuance.sealed_secrets is None
    mailer = PinMailer.objects.get(card=row, kind="new_codes")
    assert request.mailer_id == mailer.pk and mailer.status == "queued"
    new = _codes(mailer)
    assert (new.pin, new.puk) != (old.pin, old.puk)

    # On the card: the old PUK fails, the new PUK and the new PIN work.
    virtual_card.remove()
    virtual_card.insert()
    assert _puk_refused(virtual_card, old.puk)
    assert _sw(virtual_card, "0020008104", new.pin.encode()) == 0x9000
    assert _sw(virtual_card, "002C018108", new.puk.encode()) == 0x9000

    # Audited, in the history, and the codes nowhere in what an agent sees.
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "card.new_codes_request",
        "new_codes.session_start",
        "card.new_codes_written",
        "pin_mailer.void",
    } <= actions
    written = AuditEvent.objects.get(action="card.new_codes_written")
    assert written.details["voided_mailers"] == [issuance.reference]
    assert UnblockEvent.objects.filter(card=row, kind="new_codes", outcome="written").exists()
    listing = agent.get(f"/api/v1/helpdesk/cards/{row.pk}/new-codes")
    assert listing.status_code == 200 and listing.json()[0]["mailer"] == mailer.reference
    assert not {"pin", "puk"} & set(listing.json()[0])
    for text in (listing.content.decode(), str(list(AuditEvent.objects.values("details")))):
        assert new.puk not in text and old.puk not in text


def test_a_session_torn_after_the_card_wrote_the_codes_is_served_again(
    scene, virtual_card, api_client_for
):
    from cms.models import NewCodesRequest, NewCodesSession, PinMailer
    from personalization_station.relay import personalize

    row = _issue(scene, virtual_card)
    old = _codes(PinMailer.objects.get(card=row))
    filed = _file(api_client_for("helpdesk_agent"), row, reason="mailer_not_received")
    request = NewCodesRequest.objects.get(pk=filed.json()["id"])
    virtual_card.remove()
    virtual_card.insert()
    # Tear at the 7th APDU of the session (the PUK write), after the card executed it: the card
    # holds the new codes, the server never heard of it.
    virtual_card.faults.tear_at = virtual_card.apdu_count + STATION_IDENTIFICATION_APDUS + 7
    virtual_card.faults.tear_executes = True
    assert personalize(scene.api(), link_of(virtual_card)).state == "interrupted"

    request.refresh_from_db()
    assert request.status == "queued" and request.sealed_secrets is not None
    assert NewCodesSession.objects.get(request=request).status == "interrupted"
    assert not PinMailer.objects.filter(card=row, kind="new_codes").exists()
    assert PinMailer.objects.get(card=row).status == "queued"  # not voided yet

    virtual_card.insert()
    assert personalize(scene.api(), link_of(virtual_card)).state == "done"
    request.refresh_from_db()
    assert request.status == "done"
    new = _codes(PinMailer.objects.get(card=row, kind="new_codes"))
    virtual_card.remove()
    virtual_card.insert()
    assert _puk_refused(virtual_card, old.puk)
    assert _sw(virtual_card, "0020008104", new.pin.encode()) == 0x9000
    assert [s.status for s in NewCodesSession.objects.filter(request=request)] == [
        "done",
        "interrupted",
    ]


def test_with_dual_control_a_second_agent_approves_before_a_station_serves(
    scene, virtual_card, api_client_for, settings
):
    from cms.models import NewCodesRequest
    from core.dual_control import act_approve
    from personalization_station.client import ApiError
    from personalization_station.relay import personalize

    settings.HELPDESK_NEW_CODES_DUAL_CONTROL = True
    row = _issue(scene, virtual_card)
    agent = api_client_for("helpdesk_agent")
    filed = _file(agent, row, reason="blocked_puk")
    assert filed.status_code == 202, filed.content
    request = NewCodesRequest.objects.get(pk=filed.json()["id"])
    assert request.status == "awaiting_approval" and request.approval_id

    with pytest.raises(ApiError):  # not approved: the station has nothing to do with the card
        personalize(scene.api(), link_of(virtual_card))
    with pytest.raises(Exception, match=r"(?i)another|same|second"):
        act_approve(act_id=request.approval_id, user=agent.user)
    act_approve(act_id=request.approval_id, user=api_client_for("helpdesk_agent").user)
    request.refresh_from_db()
    assert request.status == "queued"
    virtual_card.remove()
    virtual_card.insert()
    assert personalize(scene.api(), link_of(virtual_card)).state == "done"


def test_bad_requests_are_refused_and_an_open_one_can_be_cancelled(
    scene, virtual_card, api_client_for
):
    from cms.models import NewCodesRequest
    from cms.services.cards import card_transition

    row = _issue(scene, virtual_card)
    agent = api_client_for("helpdesk_agent")
    url = f"/api/v1/helpdesk/cards/{row.pk}/new-codes"
    assert agent.post(url, {**IDENTITY, "reason": "bored"}, format="json").status_code == 400
    no_check = {"reason": "forgotten_puk", "identity_method": "callback"}
    assert agent.post(url, no_check, format="json").status_code == 400
    blank = {**IDENTITY, "identity_reference": "   ", "reason": "forgotten_puk"}
    assert agent.post(url, blank, format="json").status_code == 400
    operator = api_client_for("issuance_operator")
    assert (
        operator.post(url, {**IDENTITY, "reason": "forgotten_puk"}, format="json").status_code
        == 403
    )
    assert not NewCodesRequest.objects.exists()

    filed = _file(agent, row).json()
    cancel = agent.post(f"/api/v1/helpdesk/new-codes/{filed['id']}/cancel")
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    assert NewCodesRequest.objects.get(pk=filed["id"]).sealed_secrets is None
    assert agent.post(f"/api/v1/helpdesk/new-codes/{filed['id']}/cancel").status_code == 409

    card_transition(card_id=row.pk, transition="revoke", reason="lost", caller=scene.operator)
    refused = _file(agent, row)
    assert refused.status_code == 409 and refused.json()["extra"]["status"] == "REVOKED"


def test_the_console_files_new_codes_from_the_helpdesk_card_page(
    scene, virtual_card, client, make_user
):
    from cms.models import NewCodesRequest

    row = _issue(scene, virtual_card)
    client.force_login(make_user("helpdesk_agent"))
    card_page = client.get(f"/console/helpdesk/cards/{row.pk}/")
    assert f"/console/helpdesk/cards/{row.pk}/new-codes/" in card_page.content.decode()
    url = f"/console/helpdesk/cards/{row.pk}/new-codes/"
    assert client.get(url).status_code == 200
    refused = client.post(url, {"reason": "mailer_lost", "identity_method": "callback"})
    assert refused.status_code == 400 and not NewCodesRequest.objects.exists()
    filed = client.post(url, {**IDENTITY, "reason": "mailer_lost"})
    assert filed.status_code == 200 and 'id="new-codes-filed"' in filed.content.decode()
    request = NewCodesRequest.objects.get(card=row)
    assert request.status == "queued" and request.identity_method == "callback"
    page = client.get(f"/console/helpdesk/cards/{row.pk}/").content.decode()
    assert "PIN mailer lost" in page and "Waiting for the card at a station" in page


def test_a_voided_mailer_is_neither_printed_nor_confirmed(scene, virtual_card, api_client_for):
    from cms.mailers.services import pin_mailer_confirm, pin_mailer_print
    from cms.models import PinMailer
    from core.errors import Conflict
    from personalization_station.relay import personalize

    row = _issue(scene, virtual_card)
    issuance = PinMailer.objects.get(card=row)
    pin_mailer_print(mailer_id=issuance.pk, caller=scene.operator)  # printed, not confirmed
    assert _file(api_client_for("helpdesk_agent"), row).status_code == 201
    virtual_card.remove()
    virtual_card.insert()
    assert personalize(scene.api(), link_of(virtual_card)).state == "done"
    issuance.refresh_from_db()
    assert issuance.status == "voided"
    with pytest.raises(Conflict, match="voided"):
        pin_mailer_print(mailer_id=issuance.pk, caller=scene.operator)
    with pytest.raises(Conflict, match="voided"):
        pin_mailer_confirm(mailer_id=issuance.pk, caller=scene.operator)


def test_two_agents_filing_at_once_make_one_request(scene, virtual_card, make_user):
    import threading

    from django.db import connection

    from cms.callers import Caller
    from cms.models import NewCodesRequest
    from cms.services.new_codes import new_codes_request
    from core.errors import Conflict

    row = _issue(scene, virtual_card)
    agents = [Caller.for_user(make_user("helpdesk_agent")) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def file(caller) -> None:
        try:
            barrier.wait()
            new_codes_request(card_id=row.pk, reason="blocked_puk", caller=caller, **IDENTITY)
            outcomes.append("filed")
        except Conflict:
            outcomes.append("409")
        finally:
            connection.close()

    threads = [threading.Thread(target=file, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["409", "filed"]
    assert NewCodesRequest.objects.filter(card=row).count() == 1
