from __future__ import annotations

import pytest

from tests.cards.card_double import KeyPool
from tests.cards.scenario import Issuer


@pytest.fixture(scope="session")
def key_pool() -> KeyPool:
    return KeyPool(size=2)


@pytest.fixture(scope="session")
def issuer() -> Issuer:
    return Issuer()
