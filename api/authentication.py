from __future__ import annotations

import functools
import hashlib
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from api.auth_cache import token_identity
from core.roles import Role, roles_of


class TokenAuthentication(BaseAuthentication):
    """``Authorization: Token <token>``, checked against the stored digest.

    A station's token is also bound to its client certificate when
    ``STATION_CERTIFICATE_BINDING`` is on: the front (deploy/nginx) verifies the certificate
    and passes it on; presented with no certificate or another one, the token is refused.
    """

    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: Token <token>.")
        try:
            clear = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        # Token, roles and station certificate: remembered a few seconds per process, dropped
        # in every process at once on any revocation or role change (api.auth_cache).
        found = token_identity(clear)
        if found is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        if settings.STATION_CERTIFICATE_BINDING and Role.STATION in roles_of(found.user):
            _station_certificate_check(request, found.station_fingerprint)
        return found.user, found.token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def presented_certificate_sha256(meta: dict[str, Any]) -> str | None:
    """SHA-256 (hex) of the client certificate the front verified, or None: no certificate, not
    verified, or headers that do not come from a declared proxy (``CMS_TRUSTED_PROXIES``)."""
    # Checked on every request: who passed the headers on, and that the front verified them.
    if meta.get("REMOTE_ADDR") not in settings.CMS_TRUSTED_PROXIES:
        return None
    if meta.get("HTTP_X_SSL_CLIENT_VERIFY") != "SUCCESS":
        return None
    return _escaped_pem_sha256(meta.get("HTTP_X_SSL_CLIENT_CERT", ""))


@functools.lru_cache(maxsize=256)
def _escaped_pem_sha256(escaped: str) -> str | None:
    """The SHA-256 of the certificate in nginx's ``$ssl_client_escaped_cert``, or None if it is
    not one. A pure function of the header's exact text, remembered per process: a station
    presents the same certificate on every round trip, and parsing it was a tenth of a
    millisecond a request (docs/adr/0033-front-overhead.md)."""
    try:
        cert = x509.load_pem_x509_certificate(unquote(escaped).encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def _station_certificate_check(request: Request, expected: str | None) -> None:
    presented = presented_certificate_sha256(request.META)
    if expected is None or presented is None or presented != expected:
        raise exceptions.AuthenticationFailed(
            "A station's token is accepted only with that station's own client certificate "
            "(mutual TLS through the front); enroll with --certificate."
        )
