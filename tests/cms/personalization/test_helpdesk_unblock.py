"""Offline unblock against really personalized virtual cards, in process: the station writes the
admin key, the card row keeps its version, the helpdesk API answers the card's challenge; the
response unblocks that card only, and only for that challenge."""

from __future__ import annotations

import pytest

from tests.cms.conftest import _rpps
from tests.cms.personalization.conftest import card_queued, link_of

pytestmark = pytest.mark.django_db(transaction=True)

IDENTITY = {"identity_method": "in_person_document", "identity_reference": "CNI 123456789012"}


def _issue(scene, virtual_card, national_id):
    from cms.models import Card
    from personalization_station.relay import personalize

    request = card_queued(scene, virtual_card, national_id)
    assert personalize(scene.api(), link_of(virtual_card)).state == "done"
    return Card.objects.get(pk=request.card_id)


def _tx(card, hexa: str, data: bytes = b"") -> tuple[bytes, int]:
    raw = card.transmit(bytes.fromhex(hexa) + data)
    return raw[:-2], int.from_bytes(raw[-2:], "big")


def _pin_of(card_row) -> str:
    from cms.mailers.services import _unseal
    from cms.models import PinMailer

    return _unseal(PinMailer.objects.get(card=card_row)).pin


def _block(card, real_pin: str) -> None:
    wrong = "1111" if real_pin != "1111" else "2222"
    for _ in range(3):
        _tx(card, "0020008104", wrong.encode())
    assert _tx(card, "0020008100")[1] == 0x6983


def test_the_helpdesk_response_unblocks_that_card_for_that_challenge_only(
    scene, key_pool, api_client_for
):
    from cardsim.card import Card as VirtualCard
    from cms.services.cards import card_transition

    first, second = (VirtualCard.blank("cps4", keygen=key_pool) for _ in range(2))
    row_a = _issue(scene, first, "810002813839")
    row_b = _issue(scene, second, _rpps(77))
    assert row_a.admin_key_version == 1 and row_b.admin_key_version == 1

    agent = api_client_for("helpdesk_agent")
    url = f"/api/v1/helpdesk/cards/{row_a.pk}/offline-unblock"
    first.contact.power_on()
    _block(first, _pin_of(row_a))
    challenge, sw = _tx(first, "0084000008")
    assert sw == 0x9000
    issued = agent.post(url, {**IDENTITY, "challenge": challenge.hex()}, format="json")
    assert issued.status_code == 409  # issued, not active yet: no response
    for row in (row_a, row_b):
        card_transition(card_id=row.pk, transition="activate", caller=scene.operator)

    answer = agent.post(url, {**IDENTITY, "challenge": challenge.hex()}, format="json")
    assert answer.status_code == 200, answer.content
    response = bytes.fromhex(answer.json()["response"])

    # Another card, with its own challenge, refuses card A's response.
    second.contact.power_on()
    _tx(second, "0084000008")
    assert _tx(second, "0082008A08", response)[1] == 0x6982

    # Card A takes it, then the new PIN, which then verifies.
    assert _tx(first, "0082008A08", response) == (b"", 0x9000)
    assert _tx(first, "002C028104", b"8642") == (b"", 0x9000)
    assert _tx(first, "0020008104", b"8642") == (b"", 0x9000)

    # The same response after a new challenge is refused.
    _tx(first, "0084000008")
    assert _tx(first, "0082008A08", response)[1] == 0x6982
