"""The OCSP responder behind ``/ocsp`` (RFC 6960): pre-signed answers first, signed on the fly
only when they cannot serve.

Fast path: a request with a SHA-1 CertID (RFC 5019), for a serial we issued gets its pre-signed
answer from one indexed query, no ORM model built. A nonce does not leave that path by default:
RFC 5019 §2.1 lets a responder ignore it, and echoing it would cost a fresh RSA signature per
unauthenticated request (docs/adr/0019-ocsp-nonce-policy.md). With ``PKI_OCSP_NONCE_SIGNING`` a
nonce is echoed in a live answer, at most ``PKI_OCSP_NONCE_RATE`` a minute per client; beyond,
the client gets the pre-signed answer. Live path (setting ``PKI_OCSP_LIVE_SIGNING``,
docs/adr/0002-ocsp-live-signing.md): another CertID hash, a serial of a served issuer that we
never issued (signed ``unknown``), an answer past its nextUpdate, or an allowed nonce is signed
with the CA's delegated responder key. CA keys are never touched here, and nothing else is signed
here (CRLs are signed by ``pki_publish`` and the beat task only).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.x509 import ocsp
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils.http import http_date

from core.errors import NotFound
from pki import authorities
from pki.choices import CaKind
from pki.domain import builders
from pki.domain.errors import MalformedRequest, MultipleCertificates
from pki.domain.reasons import RevocationReason
from pki.domain.status import OcspStatus, ocsp_status_of
from pki.fields import serial_param
from pki.keys.errors import KeyBackendError

# numeric(50, 0) holds about 166 bits: a longer serial cannot be one of ours (and must not reach
# the database, where it would overflow).
_MAX_SERIAL_BITS = 160

_PRESIGNED_SQL = (
    "SELECT r.der, r.this_update, r.next_update FROM pki_ocspresponse r "
    "JOIN pki_certificateauthority a ON a.id = r.authority_id "
    "WHERE a.issuer_key_hash = %s AND a.issuer_name_hash = %s AND r.serial = %s"
)
_STATUS_SQL = (
    "SELECT status, revoked_at, revocation_reason, hold_since FROM pki_certificate "
    "WHERE issuer_id = %s AND serial = %s"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """A DER OCSP response and how long HTTP caches may keep it."""

    der: bytes
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    cacheable: bool = True
    http_status: int = 200


def _error(status: ocsp.OCSPResponseStatus, http_status: int = 200) -> Answer:
    return Answer(builders.ocsp_error_response(status), cacheable=False, http_status=http_status)


def live_signing_enabled() -> bool:
    return bool(getattr(settings, "PKI_OCSP_LIVE_SIGNING", True))


def nonce_signing_enabled() -> bool:
    """``PKI_OCSP_NONCE_SIGNING``: echo nonces in live answers (off: RFC 5019, nonce ignored)."""
    return live_signing_enabled() and bool(getattr(settings, "PKI_OCSP_NONCE_SIGNING", False))


_NONCE_WINDOW = 60  # seconds


def _nonce_allowed(client: str, now: dt.datetime) -> bool:
    """One more live nonce signature for ``client`` within ``PKI_OCSP_NONCE_RATE`` a minute?"""
    rate = int(getattr(settings, "PKI_OCSP_NONCE_RATE", 10))
    if rate <= 0:
        return False
    key = f"pki:ocsp-nonce:{client}:{int(now.timestamp()) // _NONCE_WINDOW}"
    if cache.add(key, 1, timeout=_NONCE_WINDOW * 2):
        return True
    try:
        return int(cache.incr(key)) <= rate
    except ValueError:  # expired between add and incr
        return bool(cache.add(key, 1, timeout=_NONCE_WINDOW * 2))


def client_of(meta: Mapping[str, Any]) -> str:
    """The client address of a WSGI environ / ``request.META``: ``REMOTE_ADDR``, or the last
    ``X-Forwarded-For`` entry when the peer is a declared proxy (``CMS_TRUSTED_PROXIES``)."""
    peer = str(meta.get("REMOTE_ADDR", ""))
    forwarded = str(meta.get("HTTP_X_FORWARDED_FOR", ""))
    if forwarded and peer in getattr(settings, "CMS_TRUSTED_PROXIES", ()):
        return forwarded.rsplit(",", 1)[-1].strip()[:64]
    return peer


def answer(data: bytes, *, now: dt.datetime, client: str = "") -> Answer:
    """The answer to one DER OCSP request from ``client`` (an address, for the nonce rate)."""
    try:
        query = builders.parse_ocsp_request(data)
    except MultipleCertificates:
        # RFC 5019 §2.1.1: a lightweight responder answers one certificate per request; the
        # request is well formed, so the OCSP error travels in an HTTP 200 the client can read
        # (docs/pki.md, "OCSP")
        return _error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    except MalformedRequest:
        return _error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, 400)
    live = live_signing_enabled()
    if query.nonce is not None and not (nonce_signing_enabled() and _nonce_allowed(client, now)):
        # RFC 5019 §2.1: the nonce is ignored, the pre-signed answer serves
        query = dataclasses.replace(query, nonce=None)
    fast = query.hash_algorithm == "sha1" and query.nonce is None
    if fast and query.serial.bit_length() <= _MAX_SERIAL_BITS:
        found = _presigned(query)
        # with live signing, an answer past its nextUpdate (publication late) is signed anew
        if found is not None and (not live or (found.next_update or now) > now):
            return found
    if not live:
        # Without live signing only pre-signed answers exist: other CertID hashes or serials we
        # never issued cannot be answered.
        return _error(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    return _signed_now(query, now=now)


def _presigned(query: builders.OcspQuery) -> Answer | None:
    with connection.cursor() as cur:
        cur.execute(
            _PRESIGNED_SQL,
            [
                query.issuer_key_hash.hex(),
                query.issuer_name_hash.hex(),
                serial_param(query.serial, connection),
            ],
        )
        row = cur.fetchone()
    if row is None:
        return None
    return Answer(bytes(row[0]), this_update=row[1], next_update=row[2])


def _served_authority(query: builders.OcspQuery) -> authorities.AuthorityContext | None:
    wanted = (query.issuer_name_hash, query.issuer_key_hash)
    for ca in authorities.authorities_current():
        if ca.kind == CaKind.ISSUING and ca.cert_ids.get(query.hash_algorithm) == wanted:
            return ca
    return None


def _signed_now(query: builders.OcspQuery, *, now: dt.datetime) -> Answer:
    if query.hash_algorithm not in builders.CERT_ID_HASHES:
        return _error(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    try:
        ca = _served_authority(query)
    except NotFound:
        ca = None
    if ca is None:
        return _error(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    status = OcspStatus.UNKNOWN
    revoked_at: dt.datetime | None = None
    reason: RevocationReason | None = None
    if query.serial.bit_length() <= _MAX_SERIAL_BITS:
        with connection.cursor() as cur:
            cur.execute(_STATUS_SQL, [ca.pk, serial_param(query.serial, connection)])
            row = cur.fetchone()
        if row is not None:
            status, revoked_at, reason = ocsp_status_of(
                row[0], revoked_at=row[1], revocation_reason=row[2], hold_since=row[3]
            )
    try:
        signer = ca.ocsp_signer()
        if signer is None:
            return _error(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        signed = builders.ocsp_answer_sign(
            signer,
            serial=query.serial,
            status=status,
            revoked_at=revoked_at,
            reason=reason,
            now=now,
            validity=dt.timedelta(hours=ca.ocsp_validity_hours),
            cert_id_hash=query.hash_algorithm,
            nonce=query.nonce,
        )
    except KeyBackendError:
        # the responder key's backend is down: RFC 6960 tryLater, HTTP 503 (DESIGN.md §8)
        return _error(ocsp.OCSPResponseStatus.TRY_LATER, 503)
    return Answer(
        signed.der,
        this_update=signed.this_update,
        next_update=signed.next_update,
        # an answer echoing a nonce is for one request only
        cacheable=query.nonce is None,
    )


OCSP_REQUEST_TYPE = "application/ocsp-request"
OCSP_RESPONSE_TYPE = "application/ocsp-response"
MAX_OCSP_REQUEST = 4096


@dataclasses.dataclass(frozen=True, slots=True)
class HttpReply:
    """An HTTP answer to an OCSP request, independent of the web stack serving it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def cache_headers(
    *,
    modified: dt.datetime,
    expires: dt.datetime,
    now: dt.datetime,
    ceiling: int | None = None,
) -> list[tuple[str, str]]:
    """RFC 5019 §6 caching headers of an answer valid until ``expires``, kept by caches at most
    ``ceiling`` seconds when given (an OCSP answer must not hide a revocation longer)."""
    max_age = max(0, int((expires - now).total_seconds()))
    if ceiling is not None and max_age > ceiling:
        max_age = max(0, ceiling)
        expires = now + dt.timedelta(seconds=max_age)
    return [
        ("Cache-Control", f"public, max-age={max_age}, no-transform, must-revalidate"),
        ("Last-Modified", http_date(modified.timestamp())),
        ("Expires", http_date(expires.timestamp())),
    ]


def cache_ceiling() -> int:
    """``PKI_OCSP_CACHE_MAX_AGE``: the longest a cache may keep an OCSP answer (seconds)."""
    return int(getattr(settings, "PKI_OCSP_CACHE_MAX_AGE", 60))


def error_reply(status: ocsp.OCSPResponseStatus, http_status: int = 200) -> HttpReply:
    """An unsigned OCSP error answer, never cached."""
    return HttpReply(
        http_status,
        [("Content-Type", OCSP_RESPONSE_TYPE), ("Cache-Control", "no-store")],
        builders.ocsp_error_response(status),
    )


def http_reply(data: bytes, *, now: dt.datetime, client: str = "") -> HttpReply:
    """The HTTP answer to one DER OCSP request (content type, cache headers, ETag)."""
    found = answer(data, now=now, client=client)
    headers = [("Content-Type", OCSP_RESPONSE_TYPE)]
    if found.cacheable and found.this_update is not None and found.next_update is not None:
        headers += cache_headers(
            modified=found.this_update, expires=found.next_update, now=now, ceiling=cache_ceiling()
        )
        etag = hashlib.sha1(found.der, usedforsecurity=False).hexdigest()
        headers.append(("ETag", f'"{etag}"'))
    else:
        headers.append(("Cache-Control", "no-store"))
    return HttpReply(found.http_status, headers, found.der)


def decode_get_path(encoded: str) -> bytes | None:
    """The DER request of ``GET /ocsp/<base64>`` (RFC 6960 A.1), ``None`` if it cannot be one."""
    if len(encoded) > MAX_OCSP_REQUEST * 2:
        return None
    try:
        return base64.b64decode(encoded, validate=False)
    except (binascii.Error, ValueError):
        return None
