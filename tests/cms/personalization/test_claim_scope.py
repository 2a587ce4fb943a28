"""A station learns nothing of cards outside its site (no registry probing by claims)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cms.personalization.conftest import card_queued

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_station_learns_nothing_of_cards_outside_its_site(scene, virtual_card, key_pool):
    from cardsim.card import Card as VirtualCard
    from cms.personalization.claims import job_claim
    from cms.personalization.jobs import CardIdentity, jobs_sync
    from core.errors import NotFound
    from demo import setup

    card_queued(scene, virtual_card)
    jobs_sync()
    other_site = setup.site(code="other-site", name="Other")
    stranger = setup.station_enrolled(other_site, name="stranger").station

    def refusal(serial: str) -> tuple[str, dict[str, Any]]:
        with pytest.raises(NotFound) as caught:
            job_claim(station=stranger, identity=CardIdentity(atr="3B00", chip_serial=serial))
        message = caught.value.message.replace(serial.upper(), "<serial>")
        return message, dict(caught.value.extra or {})

    known = refusal(virtual_card.serial.hex())
    unknown = refusal(VirtualCard.blank("cps4", keygen=key_pool).serial.hex())
    assert known == (unknown[0], known[1])
    assert "card_status" not in known[1] and "site" not in known[0].replace("station's site", "")
