"""PUK unblock and PIN status at a station, on a really personalized virtual card, reported through
the real API views: the CMS gets outcomes and counters (never a code); a blocked PUK shows on the
card's unblock state."""

from __future__ import annotations

import json

import pytest

from tests.cms.personalization.conftest import card_queued, link_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_puk_unblock_and_status_are_reported_and_a_blocked_puk_shows(
    scene, virtual_card, api_client_for
):
    from cards.iso7816 import IsoCard
    from cards.transport import FunctionTransport
    from cms.mailers.services import _unseal
    from cms.models import Card, PinMailer, UnblockEvent
    from core.models import AuditEvent
    from personalization_station.codes import (
        pin_status_report,
        puk_unblock,
        puk_unblock_report,
    )
    from personalization_station.relay import personalize

    request = card_queued(scene, virtual_card)
    assert personalize(scene.api(), link_of(virtual_card)).state == "done"
    row = Card.objects.get(pk=request.card_id)
    codes = _unseal(PinMailer.objects.get(card=row))
    card = IsoCard(FunctionTransport(virtual_card.transmit))
    api = scene.api()

    wrong = "1111" if codes.pin != "1111" else "2222"
    for _ in range(3):
        virtual_card.transmit(bytes.fromhex("0020008104") + wrong.encode())
    pin_status_report(api, card)
    row.refresh_from_db()
    assert (row.pin_tries_left, row.puk_tries_left) == (0, 10)
    assert row.pin_status_at is not None

    # A wrong PUK: refused by the card, reported with the tries left; the PIN stays blocked.
    wrong_puk = "00000000" if codes.puk != "00000000" else "11111111"
    outcome = puk_unblock(card, wrong_puk, "4321")
    assert (outcome.outcome, outcome.puk_tries_left) == ("wrong_puk", 9)
    puk_unblock_report(api, card, outcome)
    # The right PUK with the new PIN.
    outcome = puk_unblock(card, codes.puk, "4321")
    assert outcome.outcome == "unblocked"
    body = puk_unblock_report(api, card, outcome)
    assert body["outcome"] == "unblocked"
    assert virtual_card.transmit(bytes.fromhex("0020008104") + b"4321")[-2:] == b"\x90\x00"
    row.refresh_from_db()
    assert row.pin_tries_left == 3 and row.puk_tries_left == 10

    # Ten wrong PUKs block it; the card's unblock state shows it.
    for _ in range(10):
        outcome = puk_unblock(card, wrong_puk, "4321")
    assert (outcome.outcome, outcome.puk_tries_left) == ("puk_blocked", 0)
    puk_unblock_report(api, card, outcome)
    state = api_client_for("helpdesk_agent").get(f"/api/v1/helpdesk/cards/{row.pk}/unblock-state")
    assert state.status_code == 200
    assert state.json()["puk_tries_left"] == 0
    assert [e["outcome"] for e in state.json()["history"][:3]] == [
        "puk_blocked",
        "unblocked",
        "wrong_puk",
    ]
    assert UnblockEvent.objects.filter(card=row, kind="puk_unblock").count() == 3
    details = json.dumps([e.details for e in AuditEvent.objects.filter(action="card.puk_unblock")])
    assert codes.puk not in details and "4321" not in details
