"""The public status service: answers, bad input, caching and the per-client rate limit."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from cms.choices import CardStatus
from tests.cms.conftest import card_make

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "status, answer",
    [
        (CardStatus.ACTIVE, "active"),
        (CardStatus.SUSPENDED, "suspended"),
        (CardStatus.REVOKED, "revoked"),
        (CardStatus.EXPIRED, "revoked"),
    ],
)
def test_status_by_uid_and_by_card_number(cps4, status, answer):
    card = card_make(cps4, status)
    client = APIClient()
    for url in ("/contactless/status", "/api/v1/contactless/status"):
        by_uid = client.get(url, {"uid": card.desfire_uid.lower()})
        by_card = client.get(url, {"card": card.card_number})
        assert by_uid.status_code == by_card.status_code == 200
        assert by_uid.json()["status"] == by_card.json()["status"] == answer
        body = by_uid.json()
        assert set(body) == {"status", "answered_at", "deny_list_version"}  # no personal data
        assert body["deny_list_version"] is None  # nothing published yet
        assert "max-age=" in by_uid["Cache-Control"] and "public" in by_uid["Cache-Control"]


def test_unknown_card(db):
    response = APIClient().get("/contactless/status", {"uid": "04AABBCCDDEEFF"})
    assert response.status_code == 200 and response.json()["status"] == "unknown"


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"uid": "04AABBCCDDEE"},  # 6 bytes
        {"uid": "04AABBCCDDEEFG"},
        {"uid": "04AABBCCDDEEFF00"},
        {"card": "1234"},
        {"card": "80250000010000000001x"},
        {"uid": "04AABBCCDDEEFF", "card": "80250000010000000001"},
    ],
)
def test_bad_input_is_400(db, query):
    response = APIClient().get("/contactless/status", query)
    assert response.status_code == 400
    assert "message" in response.json()


def test_rate_limited_per_client(db, settings):
    settings.CONTACTLESS_STATUS_RATE = "3/min"
    client = APIClient()
    codes = [
        client.get("/contactless/status", {"uid": "04AABBCCDDEEFF"}).status_code for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    other = APIClient(REMOTE_ADDR="192.0.2.7")
    assert other.get("/contactless/status", {"uid": "04AABBCCDDEEFF"}).status_code == 200
