"""Public PKI endpoints. CRLs and CA certificates are read as ``pki_publish`` stored them; OCSP
answers are pre-signed, or signed by the delegated responder key when they cannot be
(``pki.responder``, ADR 0002). No CA key is ever used here."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib

from cryptography.x509 import ocsp
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseNotFound,
)
from django.utils import timezone
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt

from pki import responder, selectors
from pki.choices import CrlKind
from pki.domain.builders import ocsp_error_response
from pki.models import CertificateAuthority

OCSP_REQUEST_TYPE = "application/ocsp-request"
OCSP_RESPONSE_TYPE = "application/ocsp-response"
MAX_OCSP_REQUEST = 4096


def _cache_headers(
    response: HttpResponse,
    *,
    modified: dt.datetime,
    expires: dt.datetime,
    now: dt.datetime | None = None,
) -> None:
    max_age = max(0, int((expires - (now or timezone.now())).total_seconds()))
    response["Cache-Control"] = f"public, max-age={max_age}, no-transform, must-revalidate"
    response["Last-Modified"] = http_date(modified.timestamp())
    response["Expires"] = http_date(expires.timestamp())


def ca_certificate(request: HttpRequest, short_name: str) -> HttpResponse:
    der = (
        CertificateAuthority.objects.filter(short_name=short_name)
        .values_list("certificate_der", flat=True)
        .first()
    )
    if der is None:
        return HttpResponseNotFound(f"no CA {short_name}", content_type="text/plain")
    response = HttpResponse(bytes(der), content_type="application/pkix-cert")
    response["Cache-Control"] = "public, max-age=86400"
    response["Content-Disposition"] = f'inline; filename="{short_name}.cer"'
    return response


def _crl(short_name: str, kind: CrlKind) -> HttpResponse:
    publication = selectors.crl_latest(short_name=short_name, kind=kind)
    if publication is None:
        return HttpResponseNotFound(
            f"no {kind} CRL published for {short_name}", content_type="text/plain"
        )
    response = HttpResponse(bytes(publication.der), content_type="application/pkix-crl")
    _cache_headers(response, modified=publication.this_update, expires=publication.next_update)
    response["ETag"] = f'"{publication.number}"'
    return response


def crl_full(request: HttpRequest, short_name: str) -> HttpResponse:
    return _crl(short_name, CrlKind.FULL)


def crl_delta(request: HttpRequest, short_name: str) -> HttpResponse:
    return _crl(short_name, CrlKind.DELTA)


def _ocsp_error(status: ocsp.OCSPResponseStatus, http_status: int = 200) -> HttpResponse:
    return HttpResponse(
        ocsp_error_response(status), content_type=OCSP_RESPONSE_TYPE, status=http_status
    )


def _answer(data: bytes) -> HttpResponse:
    now = timezone.now()
    found = responder.answer(data, now=now)
    response = HttpResponse(found.der, content_type=OCSP_RESPONSE_TYPE, status=found.http_status)
    if found.cacheable and found.this_update is not None and found.next_update is not None:
        _cache_headers(response, modified=found.this_update, expires=found.next_update, now=now)
        response["ETag"] = f'"{hashlib.sha1(found.der, usedforsecurity=False).hexdigest()}"'
    else:
        response["Cache-Control"] = "no-store"
    return response


@csrf_exempt
def ocsp_post(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if request.content_type != OCSP_REQUEST_TYPE:
        return _ocsp_error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, 400)
    body = request.body
    if len(body) > MAX_OCSP_REQUEST:
        return _ocsp_error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, 400)
    return _answer(body)


def ocsp_get(request: HttpRequest, encoded: str) -> HttpResponse:
    if len(encoded) > MAX_OCSP_REQUEST * 2:
        return _ocsp_error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, 400)
    try:
        data = base64.b64decode(encoded, validate=False)
    except (binascii.Error, ValueError):
        return _ocsp_error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, 400)
    return _answer(data)
