"""``/contactless/status`` through the production front (ADR 0024): nginx keeps an answer for
the application's max-age (CONTACTLESS_STATUS_MAX_AGE), never a 400, and limits each client
address itself, since a cached answer never reaches the application's own limit."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.deploy.support import Topology

pytestmark = [pytest.mark.integration, pytest.mark.pcscd]


def _get(topology: Topology, query: str) -> tuple[int, bytes, dict[str, str]]:
    context = ssl.create_default_context(cafile=topology.tls_ca)
    url = f"{topology.https}/contactless/status?{query}"
    try:
        with urllib.request.urlopen(url, context=context, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def test_answers_cached_bad_input_not_and_clients_limited(topology: Topology) -> None:
    status, body, headers = _get(topology, "uid=04C0FFEE000001")
    assert status == 200 and json.loads(body)["status"] == "unknown"
    assert headers["Cache-Control"] == "public, max-age=30"
    assert headers["X-Cache-Status"] == "MISS"
    status, again, headers = _get(topology, "uid=04C0FFEE000001")
    assert status == 200 and headers["X-Cache-Status"] == "HIT" and again == body

    for _ in range(2):
        status, body, headers = _get(topology, "uid=04C0FFEE")
        assert status == 400 and json.loads(body)["message"]
        assert headers.get("X-Cache-Status") != "HIT"

    # burst 100, then 10 a second per address: 300 requests from 8 threads meet nginx's 429 (the
    # application's limit, 600 a minute, is not reached by the ones nginx lets through)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda n: _get(topology, f"uid=04C0FFEE{n:06X}")[0], range(300)))
    assert 429 in codes and codes.count(200) >= 90, codes
    assert set(codes) <= {200, 429}, codes
