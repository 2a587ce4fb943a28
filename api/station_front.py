"""A lean WSGI front for the station relay's busiest call, ``POST /api/v1/station/sessions/<id>/
exchange`` (eight of a card's nine round trips), answered before Django's handler as ``/ocsp`` and
``/contactless/status`` are (ADR 0004, 0024; this one: docs/adr/0035-station-exchange-front.md).

Through Django and DRF each exchange paid the request cycle, ten middlewares, URL resolution,
the DRF request, negotiation, permission and serializer machinery and the response's rendering
chain: about a third of the server's CPU per card (bench/personalization.py). Only the usual
request is answered here, the one a station sends with every batch: a valid ``Token`` of an
account with the station role, presented with that station's own client certificate when
``STATION_CERTIFICATE_BINDING`` is on, a JSON body of exactly ``seq`` and the card responses,
all valid, with ``Content-Type: application/json``, the plain ``Accept``, no cookie, no language,
no query string, an allowed host, over TLS where ``SECURE_SSL_REDIRECT`` wants it. Anything else
(no token or a bad one, another certificate, an error report, a field out of its rules) goes to
Django's handler unchanged, body included, whose views give every refusal: each error has one
source.

What runs here is the view's own answer (``api.views.stations.station_exchange``), the same token
and certificate checks (``api.auth_cache``, ``api.authentication``), the same exception handler
and JSON renderer as the DRF view, the headers Django's middlewares and DRF put on its answer,
Django's request signals (the connection lifecycle: CONN_MAX_AGE, health checks) and the request
metrics (``ops.metrics.station_front_counted``, handed in by ``config/wsgi.py``: api does not
import ops), where ``cms_station_front_exchanges`` also counts what was answered here: a
deployment whose exchanges all fall through to Django (a proxy header it does not send, a host
it does not list) shows as that counter standing still.
``tests/cms/personalization/test_station_front.py`` holds both paths to the same answers.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core import signals
from django.http.request import split_domain_port, validate_host
from django.urls import resolve
from django.utils import translation
from rest_framework.renderers import JSONRenderer

from api.auth_cache import token_identity
from api.authentication import presented_certificate_sha256
from api.exceptions import exception_handler
from api.views.station_protocol import MAX_EXCHANGE_RESPONSES, card_responses_plain
from api.views.stations import StationExchangeApi, StationNegotiation, station_exchange
from core.roles import Role, roles_of

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Counted = Callable[[str, int, float], None]

_PATH = re.compile(
    r"/api/v1/station/sessions/"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/exchange"
)
_KEYS = frozenset(("seq", "responses"))
_RENDERER = JSONRenderer()


def _strict_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # DRF's strict JSON parser refuses them too


class StationExchangeFront:
    """The usual ``POST .../station/sessions/<id>/exchange`` answered here; the rest by ``app``.
    ``answered`` counts the requests answered here (tests, benchmarks)."""

    def __init__(self, app: WsgiApp, counted: Counted | None = None) -> None:
        self.app = app
        self.counted = counted  # (view name, status, seconds) of each answer given here
        self.answered = 0
        self._view_name = ""  # the URL pattern's name, for the metrics (on first use)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        path = environ.get("PATH_INFO", "")
        matched = _PATH.fullmatch(path) if path.endswith("/exchange") else None
        if matched is None or not _usual(environ):
            return self.app(environ, start_response)
        body = _body(environ)
        request = _exchange_request(body) if body is not None else None
        if request is not None:
            started = time.perf_counter()
            # what Django's handler does first (the connection lifecycle: a connection broken
            # or past CONN_MAX_AGE is closed before the token lookup may use it); sent again by
            # Django's handler if the request goes there, which changes nothing
            signals.request_started.send(sender=self.__class__, environ=environ)
            try:
                account = _station_account(environ)
            except Exception:  # Django's view meets it again and answers it
                account = None
            if account is not None:
                self.answered += 1
                session_id = UUID(matched.group(1))
                return self._answer(environ, start_response, session_id, account, request, started)
        if body is not None:  # read here: handed on as it came
            environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)

    def _answer(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        session_id: UUID,
        account: Any,
        request: tuple[int, list[str]],
        started: float,
    ) -> Iterable[bytes]:
        try:
            # LocaleMiddleware: no cookie and no Accept-Language, so the default language
            translation.activate(settings.LANGUAGE_CODE)
            seq, responses = request
            headers: list[tuple[str, str]] = []
            try:
                data: Any = station_exchange(
                    session_id, account, seq=seq, responses=responses, error=None
                )
                status = 200
            except Exception as exc:
                response = exception_handler(exc, {"view": _VIEW})
                data, status, headers = response.data, response.status_code, list(response.items())
            payload = _RENDERER.render(data)
        finally:
            signals.request_finished.send(sender=self.__class__)
        if not self._view_name:
            self._view_name = resolve(environ["PATH_INFO"]).view_name
        if self.counted is not None:
            self.counted(self._view_name, status, time.perf_counter() - started)
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [*headers, *_answer_headers(environ), ("Content-Length", str(len(payload)))],
        )
        return [payload]


_VIEW = StationExchangeApi()  # for the exception handler's log line: the same view name
_ALLOW = ", ".join(_VIEW.allowed_methods)  # what DRF's answer says


def _secure(environ: dict[str, Any]) -> bool:
    """HttpRequest.is_secure(): the proxy's header when one is declared, else the scheme."""
    if settings.SECURE_PROXY_SSL_HEADER:
        header, value = settings.SECURE_PROXY_SSL_HEADER
        if header in environ:
            return bool(environ[header].split(",")[0].strip() == value)
    return bool(environ.get("wsgi.url_scheme") == "https")


def _usual(environ: dict[str, Any]) -> bool:
    """The request as every station sends it, to a host Django serves, with nothing a
    middleware would answer or redirect for (anything else: Django's handler)."""
    if (
        environ.get("CONTENT_TYPE") != "application/json"
        or environ.get("HTTP_ACCEPT", "*/*") not in StationNegotiation.PLAIN
        or environ.get("QUERY_STRING")
        or "HTTP_COOKIE" in environ
        or "HTTP_ACCEPT_LANGUAGE" in environ
        or not environ.get("HTTP_AUTHORIZATION")
        or settings.DISALLOWED_USER_AGENTS
        or settings.USE_X_FORWARDED_HOST
        or (settings.SECURE_SSL_REDIRECT and not _secure(environ))
    ):
        return False
    host = environ.get("HTTP_HOST", "")
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:  # HttpRequest.get_host()'s default
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


def _body(environ: dict[str, Any]) -> bytes | None:
    """The request body, read whole (None: no length, or over Django's limit; left unread)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if length <= 0 or (limit is not None and length > limit):
        return None
    data: bytes = environ["wsgi.input"].read(length)
    return data


def _exchange_request(body: bytes) -> tuple[int, list[str]] | None:
    """(seq, responses) of a body of exactly those two fields, each within the serializer's
    rules (``StationExchangeSerializer``); None for anything else."""
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_strict_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if type(data) is not dict or data.keys() != _KEYS:
        return None
    seq, responses = data["seq"], data["responses"]
    if type(seq) is not int or seq < 0:
        return None
    if not card_responses_plain(responses) or len(responses) > MAX_EXCHANGE_RESPONSES:
        return None
    return seq, responses


def _station_account(environ: dict[str, Any]) -> Any | None:
    """The account of a valid token holding the station role (and, when tokens are bound,
    presented with its own station's certificate); None for anything DRF would refuse."""
    parts = environ["HTTP_AUTHORIZATION"].split()
    if len(parts) != 2 or parts[0].lower() != "token" or not parts[1].isascii():
        return None
    found = token_identity(parts[1])
    if found is None or Role.STATION not in roles_of(found.user):
        return None
    if settings.STATION_CERTIFICATE_BINDING:
        presented = presented_certificate_sha256(environ)
        if found.station_fingerprint is None or presented != found.station_fingerprint:
            return None
    return found.user


def _answer_headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """The headers Django's middlewares and DRF put on the view's answer."""
    headers = [
        ("Content-Type", "application/json"),
        ("Vary", "Accept-Language"),  # LocaleMiddleware
        ("Allow", _ALLOW),
        ("X-Frame-Options", settings.X_FRAME_OPTIONS),  # XFrameOptionsMiddleware
        ("Content-Language", translation.get_language()),  # LocaleMiddleware
    ]
    # SecurityMiddleware
    if settings.SECURE_HSTS_SECONDS and _secure(environ):
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers.append(("Strict-Transport-Security", hsts))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        if not isinstance(policy, str):
            policy = ",".join(policy)
        headers.append(("Referrer-Policy", policy))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    return headers
