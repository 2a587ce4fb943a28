"""pcscd may report a dual-interface card in the contact reader before the contactless one; the
station waits a bounded time for both interfaces before it claims (issue 12: the station used to
claim, fail with "no contactless reader for this card" and wait for the card's removal)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cardsim.conftest import pcscd  # noqa: F401 - the shared pcscd fixture
from tests.cardsim.pcscd_support import (
    CONTACT_READER,
    CONTACTLESS_READER,
    Simulator,
    card_present,
    simulator_running,
    wait_absent,
)

pytestmark = [pytest.mark.integration, pytest.mark.pcscd]

LATE_MS = 2000  # the contactless slot sees the card this much after the contact one


@pytest.fixture
def sim(pcscd: object, tmp_path: Path) -> Iterator[Simulator]:  # noqa: F811
    with simulator_running(Simulator(tmp_path)) as simulator:
        yield simulator


def _insert_with_contactless_late(sim: Simulator) -> None:
    sim.call("remove")
    wait_absent(CONTACT_READER)
    wait_absent(CONTACTLESS_READER)
    sim.call("insert", contactless_delay_ms=LATE_MS)


def test_the_station_waits_for_the_late_contactless_interface(sim: Simulator) -> None:
    from personalization_station import pcsc

    _insert_with_contactless_late(sim)
    link = pcsc.wait_for_card(CONTACT_READER, timeout=30)
    try:
        assert link.contactless is not None
        # the second interface answers: the DESFire GetVersion of a CPS4's contactless chip
        answer = link.contactless.transmit(bytes.fromhex("9060000000"))
        assert answer[-2:] == bytes.fromhex("91AF"), answer.hex()
    finally:
        pcsc.close(link)


def test_without_the_wait_the_late_interface_is_missed(sim: Simulator) -> None:
    """The race itself, reproduced: a station that does not wait sees no contactless card."""
    from personalization_station import pcsc

    _insert_with_contactless_late(sim)
    link = pcsc.wait_for_card(CONTACT_READER, timeout=30, dual_wait=0)
    try:
        assert link.contactless is None
        assert not card_present(CONTACTLESS_READER)
    finally:
        pcsc.close(link)


def test_an_interface_later_than_the_wait_is_connected_when_a_batch_needs_it(
    sim: Simulator,
) -> None:
    """Seen after the wait at insertion (a loaded host): the first contactless step connects it
    rather than failing (the session was interrupted at its first batch, the station then waiting
    for a removal)."""
    from personalization_station import pcsc
    from personalization_station.relay import run_batch

    _insert_with_contactless_late(sim)
    link = pcsc.wait_for_card(CONTACT_READER, timeout=30, dual_wait=0)
    try:
        assert link.contactless is None  # missed at insertion, as above
        batch = {
            "seq": 1,
            "steps": [
                {"interface": "contact", "apdu": "00A4000C023F00", "expect": ["9000"]},
                {"interface": "contactless", "apdu": "9060000000", "expect": ["91AF"]},
            ],
        }
        responses = run_batch(batch, link)
        assert [r[-2:].hex() for r in responses] == ["9000", "91af"]
    finally:
        pcsc.close(link)
