"""Public PKI endpoints. CRLs and CA certificates are read as ``pki_publish`` stored them; OCSP
answers are pre-signed, or signed by the delegated responder key when they cannot be
(``pki.responder``, ADR 0002; nonces per ADR 0019). These views never load a CA key: only
``AuthorityContext.ocsp_signer`` is reached from here. Other web requests do sign with CA keys
(personalization, station enrollment: ADR 0011)."""

from __future__ import annotations

import datetime as dt

from cryptography.x509 import ocsp
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseNotFound,
    JsonResponse,
)
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from pki import responder, selectors
from pki.choices import CrlKind


def _cache_headers(response: HttpResponse, *, modified: dt.datetime, expires: dt.datetime) -> None:
    for name, value in responder.cache_headers(
        modified=modified, expires=expires, now=timezone.now()
    ):
        response[name] = value


def ca_certificate(request: HttpRequest, short_name: str) -> HttpResponse:
    der = selectors.authority_certificate_der(short_name=short_name)
    if der is None:
        return HttpResponseNotFound(f"no CA {short_name}", content_type="text/plain")
    response = HttpResponse(der, content_type="application/pkix-cert")
    response["Cache-Control"] = "public, max-age=86400"
    response["Content-Disposition"] = f'inline; filename="{short_name}.cer"'
    return response


def audit_anchor(request: HttpRequest) -> HttpResponse:
    """The newest signed head of the audit chain (``pki.services.anchor``), as published."""
    document = selectors.audit_anchor_latest()
    if document is None:
        return HttpResponseNotFound("no audit anchor published yet", content_type="text/plain")
    response = JsonResponse(document)
    response["Cache-Control"] = "public, max-age=60"
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


def _http(reply: responder.HttpReply) -> HttpResponse:
    response = HttpResponse(reply.body, status=reply.status)
    for name, value in reply.headers:
        response[name] = value
    return response


@csrf_exempt
def ocsp_post(request: HttpRequest) -> HttpResponse:
    # Production serves /ocsp through pki.wsgi.OcspFront (no middleware, no URL resolution);
    # these views answer the same when Django serves it (runserver, tests, other front ends).
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    malformed = responder.error_reply(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, 400)
    if request.content_type != responder.OCSP_REQUEST_TYPE:
        return _http(malformed)
    body = request.body
    if len(body) > responder.MAX_OCSP_REQUEST:
        return _http(malformed)
    client = responder.client_of(request.META)
    return _http(responder.http_reply(body, now=timezone.now(), client=client))


def ocsp_get(request: HttpRequest, encoded: str) -> HttpResponse:
    data = responder.decode_get_path(encoded)
    if data is None:
        return _http(responder.error_reply(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, 400))
    client = responder.client_of(request.META)
    return _http(responder.http_reply(data, now=timezone.now(), client=client))
