"""The relying parties' public side (DESIGN.md §8, ADR 0021): the contactless status service and
the signed deny list, read as the publication task stored it (nothing is signed here)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from cms.contactless import selectors
from cms.models import DenyListPublication
from core.errors import BadInput
from pki.responder import client_of

SIGNED_DATA_TYPE = "application/pkcs7-mime; smime-type=signed-data"


_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _rate() -> tuple[int, int]:
    """``CONTACTLESS_STATUS_RATE`` as (requests, seconds): ``600/min``, ``10/s``, ``1000/hour``."""
    count, period = str(settings.CONTACTLESS_STATUS_RATE).split("/", 1)
    return int(count), _PERIODS[period.strip()[0].lower()]


def status_rate_allowed(client: str) -> tuple[bool, int]:
    """Count one status request of ``client`` (an address); ``(allowed, seconds to wait)``.

    A window per client opened by its first request and lasting the rate's period: two cache
    operations a request (add, then incr), shared by the lean front (api.contactless_front) and
    the DRF view, so both paths count against one limit."""
    limit, period = _rate()
    key = f"contactless-status:{client}"
    if cache.add(key, 1, timeout=period):
        used = 1
    else:
        try:
            used = int(cache.incr(key))
        except ValueError:  # the window closed between add and incr
            cache.add(key, 1, timeout=period)
            used = 1
    return used <= limit, period


class ContactlessStatusThrottle(BaseThrottle):
    """Per client address, at ``CONTACTLESS_STATUS_RATE`` (see ``status_rate_allowed``)."""

    def allow_request(self, request: Any, view: Any) -> bool:
        allowed, self._wait = status_rate_allowed(client_of(request.META))
        return allowed

    def wait(self) -> float | None:
        return float(self._wait)


def status_payload(*, uid: str | None, card: str | None) -> dict[str, Any]:
    """The JSON body of a status answer for the query parameters as given; ``BadInput`` (400)
    unless exactly one of them is there in its format. One database round trip."""
    if (uid is None) == (card is None):
        raise BadInput("give exactly one of uid (14 hex digits) or card (a card number)")
    if uid is not None and not selectors.UID_PATTERN.match(uid):
        raise BadInput("uid must be a 7-byte UID in hex (14 hex digits)", extra={"fields": ["uid"]})
    if card is not None and not selectors.CARD_NUMBER_PATTERN.match(card):
        raise BadInput(
            "card must be a card number (20 digits, 8025000001…)", extra={"fields": ["card"]}
        )
    answer = selectors.contactless_status(uid=uid, card_number=card)
    return {
        "status": answer.status,
        "answered_at": _iso(answer.answered_at),
        "deny_list_version": answer.deny_list_version,
    }


def _iso(moment: Any) -> str:
    """As DRF's DateTimeField renders it (local time zone, ``Z`` for UTC)."""
    text = str(timezone.localtime(moment).isoformat())
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class ContactlessStatusApi(APIView):
    """The status of a contactless credential, by DESFire UID (7 bytes, hex) or card number:
    ``active``, ``suspended``, ``revoked`` or ``unknown``, the time of the answer and the deny
    list version it reflects. No personal data. Cacheable for ``CONTACTLESS_STATUS_MAX_AGE``."""

    public = True
    permission_classes = (AllowAny,)
    authentication_classes = ()
    throttle_classes = (ContactlessStatusThrottle,)
    errors = (BadInput,)

    class OutputSerializer(serializers.Serializer[Any]):
        status = serializers.ChoiceField(choices=["active", "suspended", "revoked", "unknown"])
        answered_at = serializers.DateTimeField()
        deny_list_version = serializers.IntegerField(allow_null=True)

    @extend_schema(
        parameters=[
            OpenApiParameter("uid", str, description="DESFire UID, 14 hex digits"),
            OpenApiParameter("card", str, description="card number, 20 digits"),
        ],
        responses=OutputSerializer,
        operation_id="contactless_status",
    )
    def get(self, request: Request) -> Response:
        payload = status_payload(
            uid=request.query_params.get("uid"), card=request.query_params.get("card")
        )
        response = Response(self.OutputSerializer(payload).data)
        response["Cache-Control"] = f"public, max-age={settings.CONTACTLESS_STATUS_MAX_AGE}"
        return response


class ContactlessStatusRootApi(ContactlessStatusApi):
    """The same service at the public address written in DESIGN.md §8 (``/contactless/status``)."""

    schema = None  # documented once, under /api/v1/


def _signed(publication: DenyListPublication | None, *, max_age: int) -> HttpResponse:
    if publication is None:
        return HttpResponseNotFound("no such deny list published", content_type="text/plain")
    response = HttpResponse(bytes(publication.der), content_type=SIGNED_DATA_TYPE)
    response["Cache-Control"] = f"public, max-age={max_age}"
    response["ETag"] = f'"{publication.sha256}"'
    response["X-Deny-List-Version"] = str(publication.version)
    name = f"deny-list-{publication.kind}-{publication.version}.p7m"
    response["Content-Disposition"] = f'inline; filename="{name}"'
    return response


def deny_list_full_latest(request: HttpRequest) -> HttpResponse:
    """The newest full list (its version in the body and in ``X-Deny-List-Version``)."""
    return _signed(selectors.deny_list_full_latest(), max_age=60)


def deny_list_full(request: HttpRequest, version: int) -> HttpResponse:
    """The full list of one version (never changes once published)."""
    return _signed(selectors.deny_list_full_get(version), max_age=86400)


def deny_list_delta(request: HttpRequest, version: int) -> HttpResponse:
    """The delta from ``version`` to ``version + 1``; 404 while ``version`` is the newest."""
    return _signed(selectors.deny_list_delta_since(version), max_age=86400)
