"""HTTP(S) to the CMS with the station's token; retries with backoff while the CMS is away.

Only the standard library: the station holds no framework and no keys. A CMS restart shows as
refused connections or 502/503/504 for a while; the client waits (exponential backoff, capped)
instead of failing the card.

One connection is kept from call to call (``http.client``): the front's mutual-TLS handshake
once, not on every round trip (it was most of nginx's CPU per card; docs/adr/0033). Where the
environment names a proxy for the CMS, or the CMS answers a redirect, the call goes through
``urllib.request`` as it always did.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import json
import logging
import select
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("personalization_station.client")

RETRY_STATUSES = frozenset({502, 503, 504})


class ApiError(Exception):
    """The CMS refused the call (4xx, or 5xx after the retries)."""

    def __init__(self, status: int, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.extra = extra or {}


def tls_context(
    *, ca_file: str | None = None, client_cert: tuple[str, str] | None = None
) -> ssl.SSLContext | None:
    """Server verification against ``ca_file`` (or the system store) and, when the station has
    one, its client certificate; None when the system defaults do."""
    if ca_file is None and client_cert is None:
        return None
    context = ssl.create_default_context(cafile=ca_file)
    if client_cert is not None:
        certificate_file, key_file = client_cert
        context.load_cert_chain(certfile=certificate_file, keyfile=key_file)
    return context


@dataclass
class Backoff:
    """Exponential backoff: first, doubling, capped at ``cap``, giving up after ``total``."""

    first: float = 0.2
    cap: float = 5.0
    total: float = 120.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or ``localhost``: traffic that never leaves the machine."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_cms_url(cms: str) -> str:
    """The CMS base URL if the station may send its token there; ValueError otherwise.

    The token (and the APDU traffic) travel in clear over ``http://``: that is only accepted
    towards this machine itself (a CMS on loopback, the tests, the demo).
    """
    parts = urllib.parse.urlsplit(cms)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"the CMS URL must be https://host[:port], not {cms!r}")
    if parts.scheme == "http" and not is_loopback(host):
        raise ValueError(
            f"refusing http:// to {host}: the station token would travel in clear; "
            f"use https://{parts.netloc} (http:// only for 127.0.0.1, ::1 and localhost)"
        )
    return cms


class CmsClient:
    """POST/GET JSON to ``<cms>/api/v1/…``.

    ``client_cert`` (certificate file, key file) is the station certificate from enrollment: it
    is presented in the TLS handshake to a CMS (reverse proxy) that asks for one.
    """

    def __init__(
        self,
        cms: str,
        token: str | None = None,
        *,
        ca_file: str | None = None,
        client_cert: tuple[str, str] | None = None,
        backoff: Backoff | None = None,
        timeout: float = 30.0,
    ) -> None:
        check_cms_url(cms)
        self.base = cms.rstrip("/") + "/api/v1/"
        self._token = token
        self.backoff = backoff or Backoff()
        self.timeout = timeout
        self._context = tls_context(ca_file=ca_file, client_cert=client_cert)
        self.calls = 0
        self._connection: http.client.HTTPConnection | None = None
        self._connection_lock = threading.Lock()
        parts = urllib.parse.urlsplit(self.base)
        # a proxy from the environment (urllib's rules): every call goes through urllib
        self._direct = parts.scheme not in urllib.request.getproxies() or bool(
            urllib.request.proxy_bypass(parts.hostname or "")
        )

    def __repr__(self) -> str:
        return f"CmsClient({self.base!r})"

    @property
    def tls(self) -> ssl.SSLContext | None:
        """The TLS context of https calls (None: the system defaults, no client certificate)."""
        return self._context

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """POST JSON (a request of ``cards.station_protocol``, or the enrollment's); returns
        (status, decoded body). Retries transient failures."""
        return self._call("POST", path, body or {})

    def _request(self, method: str, path: str, body: Mapping[str, Any]) -> urllib.request.Request:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Token {self._token}"
        data = json.dumps(dict(body)).encode()
        url = self.base + path  # the scheme was checked in __init__
        return urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310

    def close(self) -> None:
        """Close the kept connection (the next call opens one)."""
        with self._connection_lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _open(self) -> http.client.HTTPConnection:
        parts = urllib.parse.urlsplit(self.base)
        host, port = parts.hostname or "", parts.port
        if parts.scheme == "https":
            return http.client.HTTPSConnection(
                host, port, timeout=self.timeout, context=self._context
            )
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def _on_connection(self, request: urllib.request.Request) -> tuple[int, str, bytes] | None:
        """(status, reason, body) of ``request`` sent on the kept connection; None: send it
        with urllib (a proxy in the environment). A kept connection the server has closed (idle
        too long) is seen before anything is sent on it, and a new one opened; a close that
        crosses the send is sent once more on a new connection (logged); any other failure is
        the caller's (OSError, as urllib's), which retries it with a warning."""
        if not self._direct:
            return None
        target = urllib.parse.urlsplit(request.full_url)
        path = target.path + (f"?{target.query}" if target.query else "")
        headers = {**request.headers, "Connection": "keep-alive"}
        with self._connection_lock:
            if self._connection is not None and _dropped(self._connection):
                self._connection.close()
                self._connection = None
            for attempt in (1, 2):
                reused = self._connection is not None
                if self._connection is None:
                    self._connection = self._open()
                try:
                    self._connection.request(
                        request.get_method(), path, body=request.data, headers=headers
                    )
                    response = self._connection.getresponse()
                    raw = response.read()
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    self._connection.close()
                    self._connection = None
                    if reused and attempt == 1:
                        # the server's close crossed the send (seen too late above)
                        log.info("kept connection closed by the CMS; sent again on a new one")
                        continue
                    raise
                except BaseException:
                    self._connection.close()
                    self._connection = None
                    raise
                if response.will_close:
                    self._connection.close()
                    self._connection = None
                return response.status, response.reason, raw
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(self, method: str, path: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        waited = 0.0
        delay = self.backoff.first
        while True:
            self.calls += 1
            try:
                request = self._request(method, path, body)
                try:
                    answered = self._on_connection(request)
                except OSError as exc:  # as urllib reports it: retried below
                    raise urllib.error.URLError(exc) from exc
                if answered is not None:
                    status, reason, raw = answered
                    if status >= 300:  # handled below as urllib's (a redirect: refused)
                        raise urllib.error.HTTPError(
                            request.full_url, status, reason, http.client.HTTPMessage(),
                            io.BytesIO(raw),
                        )  # fmt: skip
                    return status, (json.loads(raw) if raw else {})
                opener = urllib.request.build_opener(
                    urllib.request.HTTPSHandler(context=self._context), _RedirectRefused
                )
                with opener.open(request, timeout=self.timeout) as response:
                    raw = response.read()
                    return response.status, (json.loads(raw) if raw else {})
            except urllib.error.HTTPError as exc:
                status = exc.code
                try:
                    payload = json.loads(exc.read() or b"{}")
                except ValueError:
                    payload = {}
                if status not in RETRY_STATUSES:
                    raise ApiError(
                        status, str(payload.get("message", exc.reason)), payload.get("extra")
                    ) from None
                reason = f"HTTP {status}"
            except (
                urllib.error.URLError,
                ConnectionError,
                TimeoutError,
                # an answer cut short (IncompleteRead) or garbled: not an OSError, and it ended
                # the station with a traceback; the call is retried as a dropped connection is
                http.client.HTTPException,
            ) as exc:
                reason = str(getattr(exc, "reason", exc)) or type(exc).__name__
            if waited >= self.backoff.total:
                raise ApiError(503, f"the CMS is unreachable ({reason}); gave up")
            log.warning("CMS unreachable (%s); retrying in %.1f s", reason, delay)
            self.backoff.sleep(delay)
            waited += delay
            delay = min(delay * 2, self.backoff.cap)


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether the server closed a kept connection: its socket reads as ready (end of stream)
    while no answer is awaited."""
    sock = connection.sock
    if sock is None:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


class _RedirectRefused(urllib.request.HTTPRedirectHandler):
    """The station API never redirects: a redirect is an error, not followed (urllib would send
    the request and its token again, to wherever ``Location`` points)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
