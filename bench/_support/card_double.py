"""The card side of the cards benchmark: the pure-code test double of tests/cards/card_double.py.

A test double, not the virtual card (cardsim): it answers the CPS4 program correctly (it checks
every MAC and cryptogram the host sends) and costs only CPU. ``Timed`` wraps each interface so the
benchmark can subtract the card's CPU time and report the host's alone.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.cards.card_double import CardDouble, ContactChip, DesfireChip, KeyPool  # noqa: E402
from tests.cards.scenario import Issuer, Scenario, make_scenario  # noqa: E402

__all__ = [
    "CardDouble",
    "ContactChip",
    "DesfireChip",
    "Issuer",
    "KeyPool",
    "Scenario",
    "Timed",
    "make_scenario",
]


class Timed:
    """Calls a card-side function and accumulates the CPU time spent inside it."""

    def __init__(self, card: Callable[[bytes], bytes]) -> None:
        self._card = card
        self.cpu = 0.0
        self.calls = 0

    def __call__(self, apdu: bytes) -> bytes:
        start = time.process_time()
        try:
            return self._card(apdu)
        finally:
            self.cpu += time.process_time() - start
            self.calls += 1
