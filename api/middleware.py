"""JSON errors for machine-facing paths, even outside DRF views and with DEBUG on."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from api.exceptions import error_body
from core.errors import ApplicationError

logger = logging.getLogger(__name__)

MACHINE_PREFIXES = ("/api/", "/pki/", "/ocsp", "/contactless/")


class JsonErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(MACHINE_PREFIXES):
            return None
        if isinstance(exception, Http404):
            return JsonResponse(error_body(f"Nothing at {request.path}."), status=404)
        if isinstance(exception, PermissionDenied):
            return JsonResponse(error_body("You may not do this."), status=403)
        if isinstance(exception, ApplicationError):
            return JsonResponse(
                error_body(exception.message, exception.extra), status=exception.status_code
            )
        logger.exception("unhandled error on %s", request.path)
        return JsonResponse(error_body("Internal error; it has been logged."), status=500)
