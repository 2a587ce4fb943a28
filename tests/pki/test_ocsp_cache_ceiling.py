"""OCSP answers tell HTTP caches to keep them no longer than ``PKI_OCSP_CACHE_MAX_AGE``, whatever
their nextUpdate: the revocation delay promised through the nginx front (deploy/nginx)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.utils.http import parse_http_date

from pki import responder
from pki.models import Certificate
from pki.wsgi import OcspFront
from tests.pki.test_wsgi import Reply, _environ, _request, front, issued  # noqa: F401

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def _max_age(cache_control: str) -> int:
    found = re.search(r"max-age=(\d+)", cache_control)
    assert found is not None, cache_control
    return int(found.group(1))


def test_a_ceiling_caps_max_age_and_expires() -> None:
    headers = dict(
        responder.cache_headers(
            modified=NOW, expires=NOW + dt.timedelta(hours=24), now=NOW, ceiling=60
        )
    )
    assert _max_age(headers["Cache-Control"]) == 60
    assert parse_http_date(headers["Expires"]) == int(NOW.timestamp()) + 60


def test_an_answer_expiring_before_the_ceiling_keeps_its_own_lifetime() -> None:
    headers = dict(
        responder.cache_headers(
            modified=NOW, expires=NOW + dt.timedelta(seconds=20), now=NOW, ceiling=60
        )
    )
    assert _max_age(headers["Cache-Control"]) == 20
    past = dict(responder.cache_headers(modified=NOW, expires=NOW, now=NOW, ceiling=60))
    assert _max_age(past["Cache-Control"]) == 0


def test_served_answers_follow_the_setting(
    settings: Any,
    front: OcspFront,  # noqa: F811
    issued: tuple[Certificate, Any, Any],  # noqa: F811
) -> None:
    _, cert, issuer = issued
    body = _request(cert, issuer)
    for ceiling in (60, 7):
        settings.PKI_OCSP_CACHE_MAX_AGE = ceiling
        posted = Reply(front, _environ("POST", "/ocsp", body))
        assert posted.code == 200
        # the pre-signed answer is valid for hours (hierarchy.toml); caches keep it `ceiling`
        assert _max_age(posted.headers["Cache-Control"]) == ceiling
        assert posted.headers["ETag"].startswith('"')
    # RFC 5019 default: the nonce is ignored, the pre-signed answer is cached like any other
    nonce = Reply(front, _environ("POST", "/ocsp", _request(cert, issuer, nonce=b"n" * 16)))
    assert _max_age(nonce.headers["Cache-Control"]) == 7
    # an echoed nonce (opt-in, ADR 0019) is for one request only
    settings.PKI_OCSP_NONCE_SIGNING = True
    nonce = Reply(front, _environ("POST", "/ocsp", _request(cert, issuer, nonce=b"m" * 16)))
    assert nonce.headers["Cache-Control"] == "no-store"
