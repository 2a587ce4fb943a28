"""Fixtures of the simulator tests: a shared key pool so no test waits for RSA generation."""

from __future__ import annotations

from pathlib import Path

import pytest

from cards import crypto
from cardsim.card import TEST_SCP03_MASTER, Card, KeyPool

KEY_POOL_FILE = Path(__file__).resolve().parents[2] / "cardsim" / "fixtures" / "test-keypool.pem"


@pytest.fixture(scope="session")
def key_pool() -> KeyPool:
    return KeyPool.from_pem_file(KEY_POOL_FILE)


@pytest.fixture
def card(key_pool: KeyPool) -> Card:
    return Card.blank("cps4", keygen=key_pool)


def card_keys(serial: bytes) -> tuple[bytes, bytes, bytes]:
    """The static SCP03 keys a host derives for a card from the test master key and its KDD."""
    return tuple(  # type: ignore[return-value]
        crypto.scp03_diversify_key(TEST_SCP03_MASTER, serial, t, 16)
        for t in (
            crypto.SCP03_DIVERSIFY_ENC,
            crypto.SCP03_DIVERSIFY_MAC,
            crypto.SCP03_DIVERSIFY_DEK,
        )
    )


@pytest.fixture(scope="session")
def pcscd() -> object:
    from tests.cardsim.pcscd_support import pcscd_running

    with pcscd_running():
        yield None
