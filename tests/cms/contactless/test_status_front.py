"""The lean status front (api.contactless_front, ADR 0024): the same answers, 400s, cache header
and per-client rate limit as the DRF view, other methods and paths handed to Django."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from api.contactless_front import ContactlessStatusFront
from cms.choices import CardStatus
from tests.cms.conftest import card_make
from tests.wsgi import Reply

pytestmark = pytest.mark.django_db


class Fallback:
    """Stands for Django's handler: records what it was given."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        start_response("204 No Content", [])
        return []


def _environ(query: str, method: str = "GET", path: str = "/contactless/status", addr="127.0.0.1"):
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "REMOTE_ADDR": addr,
        "wsgi.input": io.BytesIO(b""),
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }


@pytest.fixture
def front() -> ContactlessStatusFront:
    cache.clear()
    return ContactlessStatusFront(Fallback())


@pytest.mark.parametrize(
    "status, answer",
    [
        (CardStatus.ACTIVE, "active"),
        (CardStatus.SUSPENDED, "suspended"),
        (CardStatus.REVOKED, "revoked"),
    ],
)
def test_same_answer_as_the_view(front, cps4, settings, status, answer):
    settings.CONTACTLESS_STATUS_MAX_AGE = 17
    card = card_make(cps4, status)
    for query in (f"uid={card.desfire_uid.lower()}", f"card={card.card_number}"):
        reply = Reply(front, _environ(query))
        assert reply.code == 200
        body = reply.json()
        view = APIClient().get(f"/api/v1/contactless/status?{query}").json()
        assert set(body) == set(view) == {"status", "answered_at", "deny_list_version"}
        assert body["status"] == view["status"] == answer
        assert body["deny_list_version"] == view["deny_list_version"]
        assert reply.headers["Cache-Control"] == "public, max-age=17"
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert front.app.seen == []


def test_unknown(front, db):
    reply = Reply(front, _environ("uid=04AABBCCDDEEFF"))
    assert reply.code == 200 and reply.json()["status"] == "unknown"


@pytest.mark.parametrize(
    "query",
    [
        "",
        "uid=04AABBCCDDEE",
        "uid=04AABBCCDDEEFG",
        "uid=",
        "uid=04AABBCCDDEEFF00",
        "card=1234",
        "card=80250000010000000001x",
        "uid=04AABBCCDDEEFF&card=80250000010000000001",
        "uid=%FF%FE",
    ],
)
def test_bad_input_is_400_and_not_cacheable(front, db, query):
    reply = Reply(front, _environ(query))
    assert reply.code == 400
    assert reply.json()["message"]
    assert "Cache-Control" not in reply.headers
    assert APIClient().get(f"/api/v1/contactless/status?{query}").status_code == 400


def test_rate_limited_per_client_shared_with_the_view(front, db, settings):
    settings.CONTACTLESS_STATUS_RATE = "3/min"
    codes = [Reply(front, _environ("uid=04AABBCCDDEEFF")).code for _ in range(2)]
    # the DRF view counts against the same limit for the same address
    codes.append(APIClient().get("/contactless/status", {"uid": "04AABBCCDDEEFF"}).status_code)
    refused = Reply(front, _environ("uid=04AABBCCDDEEFF"))
    assert [*codes, refused.code] == [200, 200, 200, 429]
    assert refused.headers["Retry-After"] == "60" and refused.json()["message"]
    assert Reply(front, _environ("uid=04AABBCCDDEEFF", addr="192.0.2.7")).code == 200


def test_other_methods_and_paths_go_to_django(front, db):
    for method, path in (
        ("POST", "/contactless/status"),
        ("HEAD", "/contactless/status"),
        ("GET", "/contactless/status/"),
        ("GET", "/api/v1/contactless/status"),
    ):
        assert Reply(front, _environ("uid=04AABBCCDDEEFF", method, path)).code == 204
    assert len(front.app.seen) == 4


def test_the_deployed_application_has_the_front():
    from config.wsgi import application

    assert isinstance(application.app, ContactlessStatusFront)


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_limit(front, db, settings):
    settings.CONTACTLESS_STATUS_RATE = "1/min"
    settings.CMS_TRUSTED_PROXIES = ["127.0.0.1"]

    def through_proxy(client: str, proxy: str = "127.0.0.1") -> int:
        environ = _environ("uid=04AABBCCDDEEFF", addr=proxy)
        environ["HTTP_X_FORWARDED_FOR"] = client
        return Reply(front, environ).code

    assert [through_proxy("192.0.2.1"), through_proxy("192.0.2.1")] == [200, 429]
    assert through_proxy("192.0.2.2") == 200
    # from a peer that is not a declared proxy the header counts for nothing
    assert [
        through_proxy("192.0.2.3", "198.51.100.9"),
        through_proxy("192.0.2.4", "198.51.100.9"),
    ] == [
        200,
        429,
    ]
