"""A lean WSGI front for ``/ocsp``: answered straight from ``pki.responder``, everything else
handed to Django.

OCSP is the one hot public endpoint (DESIGN.md §10: at least 3x ``openssl ocsp``). Through
Django's handler each request paid the request cycle, nine middlewares and URL resolution, about
0.7 ms of CPU against ~0.1 ms for the answer itself (docs/pki.md, "OCSP"). None of that applies
here: no session, no user, no CSRF (OCSP is unauthenticated POST by design), no templates. What
is kept: the database connection lifecycle Django's request signals give (persistent connections
closed when obsolete or broken), the same answers, status codes and headers as ``pki.views``.
See docs/adr/0004-lean-ocsp-front.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from cryptography.x509 import ocsp
from django.db import DatabaseError, connection
from django.utils import timezone

from pki import responder

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_STATUS = {
    200: "200 OK",
    400: "400 Bad Request",
    405: "405 Method Not Allowed",
    413: "413 Content Too Large",
    503: "503 Service Unavailable",
}
_PATH = "/ocsp"
_GET_PREFIX = "/ocsp/"
# what SecurityMiddleware would add to these responses
_COMMON = [("X-Content-Type-Options", "nosniff")]


class OcspFront:
    """``/ocsp`` (POST) and ``/ocsp/<base64>`` (GET, HEAD) answered here; the rest by ``app``."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == _PATH or (path.startswith(_GET_PREFIX) and len(path) > len(_GET_PREFIX)):
            reply = self._reply(environ, path)
            headers = [*reply.headers, *_COMMON, ("Content-Length", str(len(reply.body)))]
            start_response(_STATUS[reply.status], headers)
            return [] if environ.get("REQUEST_METHOD") == "HEAD" else [reply.body]
        return self.app(environ, start_response)

    def _reply(self, environ: dict[str, Any], path: str) -> responder.HttpReply:
        method = environ.get("REQUEST_METHOD", "GET")
        if path == _PATH:
            if method != "POST":
                return responder.HttpReply(405, [("Allow", "POST")], b"")
            data = _body(environ)
        else:
            if method not in ("GET", "HEAD"):
                return responder.HttpReply(405, [("Allow", "GET, HEAD")], b"")
            # PATH_INFO is latin-1 decoded bytes (PEP 3333); base64 is ASCII anyway
            data = responder.decode_get_path(path[len(_GET_PREFIX) :])
        if data is None:
            return responder.error_reply(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, 400)
        # what Django's request_started/finished signals do: drop a connection that is past
        # CONN_MAX_AGE or broke in an earlier request (never one inside a caller's transaction)
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
        try:
            return responder.http_reply(
                data, now=timezone.now(), client=responder.client_of(environ)
            )
        except DatabaseError:
            # the database is down or restarting: RFC 6960 tryLater, the client retries
            logger.exception("OCSP lookup failed")
            if not connection.in_atomic_block:
                connection.close()
            return responder.error_reply(ocsp.OCSPResponseStatus.TRY_LATER, 503)


def _body(environ: dict[str, Any]) -> bytes | None:
    """The request body if it is an OCSP request of a sane size, ``None`` otherwise."""
    content_type = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if content_type != responder.OCSP_REQUEST_TYPE:
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length <= 0 or length > responder.MAX_OCSP_REQUEST:
        return None
    data: bytes = environ["wsgi.input"].read(length)
    return data if len(data) == length else None
