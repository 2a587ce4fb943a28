"""HTTP(S) to the CMS with the station's token; retries with backoff while the CMS is away.

Only ``urllib`` from the standard library: the station holds no framework and no keys. A CMS
restart shows as refused connections or 502/503/504 for a while; the client waits (exponential
backoff, capped) instead of failing the card.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
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


@dataclass
class Backoff:
    """Exponential backoff: first, doubling, capped at ``cap``, giving up after ``total``."""

    first: float = 0.2
    cap: float = 5.0
    total: float = 120.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)


class CmsClient:
    """POST/GET JSON to ``<cms>/api/v1/…``."""

    def __init__(
        self,
        cms: str,
        token: str | None = None,
        *,
        ca_file: str | None = None,
        backoff: Backoff | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not cms.startswith(("https://", "http://")):
            raise ValueError(f"the CMS URL must be http(s)://…, not {cms!r}")
        self.base = cms.rstrip("/") + "/api/v1/"
        self._token = token
        self.backoff = backoff or Backoff()
        self.timeout = timeout
        self._context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self.calls = 0

    def __repr__(self) -> str:
        return f"CmsClient({self.base!r})"

    def post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """POST JSON; returns (status, decoded body). Retries transient failures."""
        return self._call("POST", path, body or {})

    def _request(self, method: str, path: str, body: dict[str, Any]) -> urllib.request.Request:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Token {self._token}"
        data = json.dumps(body).encode()
        url = self.base + path  # the scheme was checked in __init__
        return urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310

    def _call(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        waited = 0.0
        delay = self.backoff.first
        while True:
            self.calls += 1
            try:
                request = self._request(method, path, body)
                with urllib.request.urlopen(  # noqa: S310 - the configured CMS URL
                    request, timeout=self.timeout, context=self._context
                ) as response:
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
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                reason = str(getattr(exc, "reason", exc))
            if waited >= self.backoff.total:
                raise ApiError(503, f"the CMS is unreachable ({reason}); gave up")
            log.warning("CMS unreachable (%s); retrying in %.1f s", reason, delay)
            self.backoff.sleep(delay)
            waited += delay
            delay = min(delay * 2, self.backoff.cap)
