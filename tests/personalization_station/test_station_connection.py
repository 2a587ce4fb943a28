"""The station keeps one connection to the CMS from call to call (the front's TLS handshake once,
ADR 0033), with the same answers, errors and retries as before."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from personalization_station.client import ApiError, Backoff, CmsClient


class _Cms(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    connections: set[tuple[str, int]] = set()
    answers: list[tuple[int, dict[str, Any]]] = []
    seen: list[dict[str, Any]] = []
    close_after: bool = False
    truncate: int = 0  # answers cut short (the connection dropped mid-body)

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.seen.append(
            {"path": self.path, "body": json.loads(self.rfile.read(length)),
             "auth": self.headers["Authorization"]}
        )  # fmt: skip
        type(self).connections.add(self.client_address)
        status, payload = self.answers.pop(0) if self.answers else (200, {"ok": True})
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        if "location" in payload:
            self.send_header("Location", payload["location"])
        self.end_headers()
        if self.truncate:
            type(self).truncate -= 1
            self.wfile.write(raw[: len(raw) // 2])
            self.close_connection = True
            return
        self.wfile.write(raw)
        if self.close_after:  # as a front closes a connection kept idle too long
            self.close_connection = True

    def do_GET(self) -> None:  # where a followed redirect would land
        self.seen.append({"path": self.path, "auth": self.headers["Authorization"]})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def cms() -> Iterator[tuple[str, type[_Cms]]]:
    handler = type("Cms", (_Cms,), {"connections": set(), "answers": [], "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _no_wait(waits: list[float]) -> Backoff:
    return Backoff(first=0.01, cap=0.01, total=0.05, sleep=waits.append)


def test_round_trips_share_one_connection(cms: tuple[str, type[_Cms]]) -> None:
    url, handler = cms
    client = CmsClient(url, "tok")
    for n in range(3):
        assert client.post("station/claim", {"n": n}) == (200, {"ok": True})
    assert len(handler.connections) == 1
    assert [s["body"] for s in handler.seen] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert {s["path"] for s in handler.seen} == {"/api/v1/station/claim"}
    assert {s["auth"] for s in handler.seen} == {"Token tok"}
    client.close()
    assert client.post("station/claim") == (200, {"ok": True})
    assert len(handler.connections) == 2


def test_a_connection_the_server_closed_is_opened_again_without_waiting(
    cms: tuple[str, type[_Cms]],
) -> None:
    url, handler = cms
    waits: list[float] = []
    client = CmsClient(url, "tok", backoff=_no_wait(waits))
    assert client.post("station/claim")[0] == 200
    # the server drops the kept connection behind the client's back
    assert client._connection is not None and client._connection.sock is not None
    handler.close_after = True
    assert client.post("station/claim")[0] == 200  # answered, then closed by the server
    handler.close_after = False
    assert client.post("station/claim")[0] == 200
    assert waits == []
    assert len(handler.seen) == 3


def test_errors_and_retries_are_as_before(cms: tuple[str, type[_Cms]]) -> None:
    url, handler = cms
    waits: list[float] = []
    client = CmsClient(url, "tok", backoff=_no_wait(waits))
    handler.answers.extend([(503, {}), (200, {"done": 1})])
    assert client.post("station/claim") == (200, {"done": 1})  # 503: retried
    assert len(waits) == 1
    handler.answers.append((409, {"message": "already claimed", "extra": {"job": "j1"}}))
    with pytest.raises(ApiError) as refused:
        client.post("station/claim")
    assert (refused.value.status, refused.value.message) == (409, "already claimed")
    assert refused.value.extra == {"job": "j1"}
    assert client.post("station/claim") == (200, {"ok": True})  # the connection still serves
    assert len(handler.connections) == 1


@pytest.mark.parametrize("through_urllib", [False, True])
def test_an_answer_cut_short_is_retried_not_a_crash(
    cms: tuple[str, type[_Cms]], through_urllib: bool
) -> None:
    """A connection dropped in the middle of the answer (http.client's IncompleteRead, not an
    OSError) is the outer retry's, as a dropped connection is: it escaped the client and ended
    the station with a traceback."""
    url, handler = cms
    waits: list[float] = []
    client = CmsClient(url, "tok", backoff=_no_wait(waits))
    client._direct = not through_urllib
    handler.truncate = 1
    handler.answers.append((200, {"seq": 2, "state": "running"}))
    assert client.post("station/sessions/s/exchange", {"seq": 1}) == (200, {"ok": True})
    assert len(waits) == 1  # retried after the backoff, with its warning
    assert [s["body"] for s in handler.seen] == [{"seq": 1}, {"seq": 1}]


def test_a_cms_away_is_waited_for_then_given_up() -> None:
    waits: list[float] = []
    client = CmsClient("http://127.0.0.1:9", "tok", backoff=_no_wait(waits))  # discard: refused
    with pytest.raises(ApiError) as away:
        client.post("station/claim")
    assert away.value.status == 503 and "unreachable" in away.value.message
    assert waits


def test_with_a_proxy_in_the_environment_calls_go_through_urllib(monkeypatch) -> None:
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert CmsClient("https://cms.example", "tok")._direct is False
    monkeypatch.setenv("no_proxy", "cms.example")
    assert CmsClient("https://cms.example", "tok")._direct is True


@pytest.mark.parametrize("through_urllib", [False, True])
def test_a_redirect_is_refused_not_followed_nor_sent_again(
    cms: tuple[str, type[_Cms]], through_urllib: bool
) -> None:
    """The station API never redirects: a 3xx is an error; the request is sent once, and the
    token does not go to the address the redirect names."""
    url, handler = cms
    client = CmsClient(url, "tok", backoff=_no_wait([]))
    client._direct = not through_urllib  # what a proxy in the environment decides
    handler.answers.append((302, {"location": f"{url}/elsewhere"}))
    with pytest.raises(ApiError) as refused:
        client.post("station/claim", {"n": 1})
    assert refused.value.status == 302
    assert [s["body"] for s in handler.seen] == [{"n": 1}]
