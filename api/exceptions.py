"""One exception handler: every API error is ``{"message": ..., "extra": {...}}``."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf
from rest_framework.response import Response

from core.errors import ApplicationError

logger = logging.getLogger(__name__)


def _flatten(detail: Any) -> Any:
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    return str(detail)


def error_body(message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"message": message, "extra": extra or {}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.message, exc.extra), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("The request body is over the size limit."), status=413)
    if isinstance(exc, SuspiciousOperation):
        # Too many fields, a forged host: the request, not the server.
        return Response(error_body("The request is malformed."), status=400)
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    if isinstance(exc, drf.ValidationError):
        return Response(
            error_body(
                "The request is not valid; see extra.fields.", {"fields": _flatten(exc.detail)}
            ),
            status=400,
        )
    if isinstance(exc, drf.APIException):
        headers: dict[str, str] = {}
        if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
            authenticate_header = getattr(exc, "auth_header", None)
            if authenticate_header:
                headers["WWW-Authenticate"] = authenticate_header
        wait = getattr(exc, "wait", None)
        if isinstance(exc, drf.Throttled) and wait is not None:
            headers["Retry-After"] = str(int(wait))
        message = exc.detail if isinstance(exc.detail, str) else "Request refused."
        extra = {} if isinstance(exc.detail, str) else {"detail": _flatten(exc.detail)}
        return Response(error_body(str(message), extra), status=exc.status_code, headers=headers)
    view = context.get("view")
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is unreachable or restarting: transient, the transaction rolled back;
        # 503 tells clients (the station among them) to try again.
        logger.warning("database unavailable in %s: %s", type(view).__name__ if view else "?", exc)
        return Response(
            error_body("The database is unavailable; try again shortly."),
            status=503,
            headers={"Retry-After": "2"},
        )
    logger.exception("unhandled error in %s", type(view).__name__ if view else "API view")
    return Response(error_body("Internal error; it has been logged."), status=500)


@csrf_exempt  # a POST to no endpoint is a JSON 404, not the CSRF failure page
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    return JsonResponse(error_body(f"No API endpoint at {request.path}."), status=404)
