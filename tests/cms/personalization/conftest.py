"""Fixtures of the station tests: test card keys, the PKI test hierarchy, a site with an enrolled
station, a blank virtual CPS4 registered in stock and a queued request for it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cardsim.conftest import key_pool  # noqa: F401 - shared session fixture
from tests.pki.conftest import (  # noqa: F401 - shared fixtures
    pki_software,
    softhsm,
    software_key_dir,
)

CARD_KEYS_PASSPHRASE_ENV = "CARD_KEYS_TEST_PASSPHRASE"


@pytest.fixture(scope="session")
def card_key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    os.environ[CARD_KEYS_PASSPHRASE_ENV] = "card-keys-test-passphrase-not-secret"
    return Path(tmp_path_factory.mktemp("card-keys"))


@pytest.fixture
def card_keys(settings: Any, card_key_dir: Path) -> Path:
    settings.CARD_KEY_STORE = {
        "BACKEND": "software",
        "OPTIONS": {"location": str(card_key_dir), "passphrase_env": CARD_KEYS_PASSPHRASE_ENV},
    }
    return card_key_dir


class DrfApi:
    """The station's ``Api`` over DRF's test client: real views, real token auth, no socket."""

    def __init__(self, token: str) -> None:
        from rest_framework.test import APIClient

        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        self.calls = 0

    def post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        self.calls += 1
        response = self.client.post(f"/api/v1/{path}", body or {}, format="json")
        data = response.json() if response.content else {}
        if response.status_code >= 400:
            from personalization_station.client import ApiError

            raise ApiError(response.status_code, data.get("message", ""), data.get("extra"))
        return response.status_code, data


@dataclass
class Scene:
    product: Any
    pool: Any
    station: Any
    token: str
    operator: Any

    def api(self) -> DrfApi:
        return DrfApi(self.token)


@pytest.fixture
def scene(pki_software: str, card_keys: Path, make_user: Callable[..., Any]) -> Scene:  # noqa: F811
    from cms.callers import Caller
    from demo import setup

    product = setup.products_and_keys()
    pool = setup.site()
    enrolled = setup.station_enrolled(pool)
    operator = Caller.for_user(make_user("issuance_operator"))
    return Scene(product, pool, enrolled.station, enrolled.token, operator)


@pytest.fixture
def virtual_card(key_pool: Any) -> Any:  # noqa: F811
    from cardsim.card import Card

    return Card.blank("cps4", keygen=key_pool)


def link_of(card: Any) -> Any:
    from cardsim.card import InProcessReader
    from personalization_station.relay import CardLink

    return CardLink(
        atr=card.contact.atr,
        contact=InProcessReader(card.contact),
        contactless=InProcessReader(card.contactless),
        reader="inproc",
    )


def card_queued(scene: Scene, card: Any, national_id: str = "810002813839") -> Any:
    """Register the virtual card in stock and queue a request that allocates it."""
    from demo import setup

    uid = card.desfire_chip.state.uid.hex().upper()
    setup.blank_card_register(
        product=scene.product, pool=scene.pool, chip_serial=card.serial.hex(), desfire_uid=uid
    )
    holder = setup.holder_demo(national_id)
    return setup.request_queued(
        holder=holder, product=scene.product, pool=scene.pool, operator=scene.operator
    )


def interrupted_session(scene: Any, virtual_card: Any) -> Any:
    """A job whose personalization tore mid-card: its session interrupted, secrets still sealed."""
    from cms.models import PersonalizationSession
    from personalization_station.relay import personalize
    from tests.cms.personalization.tear_plan import STATION_IDENTIFICATION_APDUS

    card_queued(scene, virtual_card)
    virtual_card.faults.tear_at = virtual_card.apdu_count + STATION_IDENTIFICATION_APDUS + 60
    assert personalize(scene.api(), link_of(virtual_card)).state == "interrupted"
    session = PersonalizationSession.objects.get(status="interrupted")
    assert session.sealed_secrets is not None
    return session
