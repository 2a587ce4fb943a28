from __future__ import annotations

import pytest

from cardsim.card import KeyPool
from demo.scenario import Issuer, load_key_pool


@pytest.fixture(scope="session")
def key_pool() -> KeyPool:
    return load_key_pool()


@pytest.fixture(scope="session")
def issuer() -> Issuer:
    return Issuer()
