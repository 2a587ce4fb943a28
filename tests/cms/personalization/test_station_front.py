"""The stations' exchange front (api.station_front, ADR 0035): a whole card through it, the same
answers, headers and errors as Django's view, and every request that is not the usual one handed
to Django with its body."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import pytest
from django.core import signals

from api.station_front import StationExchangeFront
from tests.cms.personalization.conftest import link_of
from tests.cms.personalization.test_lease_sweep import _claimed
from tests.wsgi import Reply

pytestmark = pytest.mark.django_db(transaction=True)


def _environ(path: str, body: bytes, token: str, **extra: str) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_ACCEPT": "application/json",
        "HTTP_HOST": "testserver",
        "HTTP_AUTHORIZATION": f"Token {token}",
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    environ.update(extra)
    return environ


@pytest.fixture
def front() -> StationExchangeFront:
    from config.wsgi import django_application
    from ops.metrics import station_front_counted

    return StationExchangeFront(django_application, station_front_counted)


class WsgiApi:
    """The station's ``Api`` over WSGI calls: exchanges through the front, or (``direct``)
    straight to Django's handler, alternately; every answer kept."""

    def __init__(self, front: StationExchangeFront, token: str) -> None:
        self.front, self.token = front, token
        self.calls = 0
        self.replies: list[tuple[str, Reply]] = []

    def post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        self.calls += 1
        url = f"/api/v1/{path}"
        data = json.dumps(body or {}).encode()
        route = "front" if url.endswith("/exchange") and self.calls % 2 == 0 else "django"
        app = self.front if route == "front" else self.front.app
        reply = Reply(app, _environ(url, data, self.token))
        self.replies.append((route, reply))
        answer = reply.json() if reply.body else {}
        if reply.code >= 400:
            from personalization_station.client import ApiError

            raise ApiError(reply.code, answer.get("message", ""), answer.get("extra"))
        return reply.code, answer


def test_a_card_personalized_with_its_exchanges_through_the_front(scene, virtual_card, front):
    from cms.choices import CardStatus
    from cms.models import Card
    from personalization_station.relay import personalize
    from tests.cms.personalization.conftest import card_queued

    card_queued(scene, virtual_card)
    api = WsgiApi(front, scene.token)
    outcome = personalize(api, link_of(virtual_card))

    assert outcome.state == "done", outcome.message
    exchanges = [(route, r) for route, r in api.replies if r.code == 200 and route == "front"]
    assert front.answered == len(exchanges) >= 4
    card = Card.objects.get(chip_serial=virtual_card.serial.hex().upper())
    assert card.status == CardStatus.ISSUED
    # the same headers on the front's answers as on Django's (the lengths aside)
    django_headers = {
        tuple(sorted((k, v) for k, v in r.headers.items() if k != "Content-Length"))
        for route, r in api.replies
        if route == "django" and r.code == 200 and r.json().get("state") == "running"
    }
    front_headers = {
        tuple(sorted((k, v) for k, v in r.headers.items() if k != "Content-Length"))
        for _, r in exchanges
        if r.json().get("state") == "running"
    }
    assert len(django_headers) == 1 and front_headers == django_headers


def _same_answer(front: StationExchangeFront, path: str, body: bytes, token: str, **extra: str):
    """The front's answer and Django's to the same request, which changes nothing."""
    answered = front.answered
    ours = Reply(front, _environ(path, body, token, **extra))
    theirs = Reply(front.app, _environ(path, body, token, **extra))
    assert (ours.status, ours.body, ours.headers) == (theirs.status, theirs.body, theirs.headers)
    return ours, front.answered - answered


def test_errors_of_the_service_are_the_views(scene, virtual_card, front):
    from demo import setup

    payload = _claimed(scene, virtual_card)
    path = f"/api/v1/station/sessions/{payload['session']}/exchange"
    stale = json.dumps({"seq": payload["seq"] + 5, "responses": ["9000"]}).encode()
    reply, answered = _same_answer(front, path, stale, scene.token)
    assert reply.code == 409 and answered == 1

    other = setup.station_enrolled(scene.pool, name="neighbour")
    body = json.dumps({"seq": payload["seq"], "responses": ["9000"]}).encode()
    reply, answered = _same_answer(front, path, body, other.token)
    assert reply.code == 409 and answered == 1

    unknown = "/api/v1/station/sessions/00000000-0000-4000-8000-000000000000/exchange"
    reply, answered = _same_answer(front, unknown, body, scene.token)
    assert reply.code == 404 and answered == 1


def _stale(current: int, **fields: Any) -> dict[str, Any]:
    """An exchange for a batch the session has not sent: if it reached the service, a 409."""
    return {"seq": current + 5, "responses": ["9000"], **fields}


@pytest.mark.parametrize(
    ("body", "extra", "code"),
    [
        pytest.param(_stale, {"HTTP_AUTHORIZATION": ""}, 401, id="no-token"),
        pytest.param(_stale, {"HTTP_AUTHORIZATION": "Token nope"}, 401, id="bad-token"),
        pytest.param(_stale, {"HTTP_AUTHORIZATION": "Token a b"}, 401, id="malformed"),
        pytest.param(lambda s: _stale(s, responses=["90 00"]), {}, 400, id="not-hex"),
        pytest.param(lambda s: _stale(s, responses=[9000]), {}, 400, id="a-number"),
        pytest.param(lambda s: _stale(s, responses=["9000"] * 513), {}, 400, id="too-many"),
        pytest.param(lambda s: _stale(s, seq=-1), {}, 400, id="negative-seq"),
        pytest.param(lambda s: _stale(s, seq=True), {}, 400, id="boolean-seq"),
        pytest.param(lambda s: {"seq": s + 5}, {}, 409, id="no-responses"),
        pytest.param(lambda s: _stale(s, more=1), {}, 409, id="another-key"),
        pytest.param(_stale, {"HTTP_ACCEPT": "text/html"}, 406, id="accept"),
        pytest.param(_stale, {"CONTENT_TYPE": "text/plain"}, 415, id="content-type"),
        pytest.param(_stale, {"HTTP_HOST": "evil.example"}, 400, id="host"),
        pytest.param(_stale, {"QUERY_STRING": "x=1"}, 409, id="query"),
        pytest.param(_stale, {"HTTP_COOKIE": "a=b"}, 409, id="cookie"),
        pytest.param(_stale, {"HTTP_ACCEPT_LANGUAGE": "fr"}, 409, id="language"),
    ],
)
def test_anything_but_the_usual_request_goes_to_django_with_its_body(
    scene, virtual_card, front, body, extra, code
):
    from cms.models import PersonalizationSession

    payload = _claimed(scene, virtual_card)
    path = f"/api/v1/station/sessions/{payload['session']}/exchange"
    data = json.dumps(body(payload["seq"])).encode()
    reply, answered = _same_answer(front, path, data, scene.token, **extra)
    assert answered == 0 and reply.code == code, reply.body
    session = PersonalizationSession.objects.get(pk=payload["session"])
    assert session.status == "running" and session.apdus == 0


def test_an_error_report_goes_to_django(scene, virtual_card, front):
    payload = _claimed(scene, virtual_card)
    path = f"/api/v1/station/sessions/{payload['session']}/exchange"
    body = json.dumps({"seq": payload["seq"], "error": "card removed"}).encode()
    reply = Reply(front, _environ(path, body, scene.token))
    assert front.answered == 0 and reply.code == 200
    assert reply.json()["state"] == "interrupted"


def test_over_tls_behind_the_proxy_the_same_answer_and_hsts_else_django_redirects(
    scene, virtual_card, front, settings
):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    from django.core.handlers.wsgi import WSGIHandler

    # both sides made again: their middlewares read the settings when made
    front = StationExchangeFront(WSGIHandler())
    payload = _claimed(scene, virtual_card)
    path = f"/api/v1/station/sessions/{payload['session']}/exchange"
    body = json.dumps(_stale(payload["seq"])).encode()
    reply, answered = _same_answer(front, path, body, scene.token, HTTP_X_FORWARDED_PROTO="https")
    assert answered == 1 and reply.code == 409
    assert reply.headers["Strict-Transport-Security"] == "max-age=3600"
    reply, answered = _same_answer(front, path, body, scene.token)
    assert answered == 0 and reply.code == 301


def test_a_bound_station_token_without_its_certificate_goes_to_django(
    scene, virtual_card, front, settings
):
    settings.STATION_CERTIFICATE_BINDING = True
    payload = _claimed(scene, virtual_card)
    path = f"/api/v1/station/sessions/{payload['session']}/exchange"
    body = json.dumps({"seq": payload["seq"], "responses": ["9000"]}).encode()
    reply, answered = _same_answer(front, path, body, scene.token)
    assert answered == 0 and reply.code == 401


def test_the_request_signals_and_the_metrics(scene, virtual_card, front):
    from ops.metrics import REQUESTS, STATION_FRONT

    payload = _claimed(scene, virtual_card)
    path = f"/api/v1/station/sessions/{payload['session']}/exchange"
    body = json.dumps({"seq": payload["seq"] + 5, "responses": ["9000"]}).encode()
    seen: list[str] = []

    def started(**kwargs: Any) -> None:
        seen.append("started")

    def finished(**kwargs: Any) -> None:
        seen.append("finished")

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    counted = REQUESTS.labels("POST", "station-exchange", "409")
    before = counted._value.get()
    lean = STATION_FRONT.labels("409")
    lean_before = lean._value.get()
    try:
        assert Reply(front, _environ(path, body, scene.token)).code == 409
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    assert seen == ["started", "finished"] and front.answered == 1
    assert counted._value.get() == before + 1 and lean._value.get() == lean_before + 1


def test_the_deployed_application_has_the_front():
    from config.wsgi import application
    from ops.metrics import station_front_counted

    assert isinstance(application.app.app, StationExchangeFront)
    assert application.app.app.counted is station_front_counted
