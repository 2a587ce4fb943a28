"""A lean WSGI front for the public status service (``GET /contactless/status``), answered
before Django's handler as ``/ocsp`` is (docs/adr/0004-lean-ocsp-front.md, ADR 0024).

The status service is the relying parties' hot path (DESIGN.md §10, ``bench/contactless.py``):
through Django and DRF each lookup paid the request cycle, the middlewares, URL resolution, content
negotiation and a throttle that pickles a list of timestamps, for one indexed query. Here: the
same checks (exactly one of ``uid``/``card``, their formats: 400 otherwise), the same per-client
rate limit and counters (``api.views.contactless.status_rate_allowed``), the same JSON body and
``Cache-Control``, one database round trip. Any other method or path goes to Django unchanged;
``/api/v1/contactless/status`` stays on the DRF view (the documented schema), same answers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.db import DatabaseError, connection

from api.exceptions import error_body
from api.views.contactless import status_payload, status_rate_allowed
from core.errors import ApplicationError
from pki.responder import client_of

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

PATH = "/contactless/status"
_STATUS = {200: "200 OK", 400: "400 Bad Request", 429: "429 Too Many Requests"}
_STATUS[503] = "503 Service Unavailable"
_JSON = ("Content-Type", "application/json")
# what SecurityMiddleware would add
_COMMON = [("X-Content-Type-Options", "nosniff")]


class ContactlessStatusFront:
    """``GET /contactless/status`` answered here; everything else by ``app``."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "GET":
            return self.app(environ, start_response)
        code, headers, body = self._reply(environ)
        payload = json.dumps(body, separators=(",", ":")).encode()
        headers = [_JSON, *headers, *_COMMON, ("Content-Length", str(len(payload)))]
        start_response(_STATUS[code], headers)
        return [payload]

    def _reply(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], Any]:
        allowed, wait = status_rate_allowed(client_of(environ))
        if not allowed:
            message = f"Request was throttled. Expected available in {wait} seconds."
            return 429, [("Retry-After", str(wait))], error_body(message)
        # PEP 3333: QUERY_STRING is latin-1 decoded; Django's QueryDict also keeps the last value
        # of a repeated parameter and blank values (which then fail the format check)
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        uid, card = query.get("uid", [None])[-1], query.get("card", [None])[-1]
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
        try:
            body = status_payload(uid=uid, card=card)
        except ApplicationError as exc:
            return exc.status_code, [], error_body(exc.message, exc.extra)
        except DatabaseError:
            logger.exception("contactless status lookup failed")
            if not connection.in_atomic_block:
                connection.close()
            message = "The database is unavailable; try again shortly."
            return 503, [("Retry-After", "2")], error_body(message)
        cache_control = f"public, max-age={settings.CONTACTLESS_STATUS_MAX_AGE}"
        return 200, [("Cache-Control", cache_control)], body
