"""``GET /metrics``: Prometheus text format, for the monitoring system only.

Allowed when the client address is in ``METRICS_ALLOWED_NETWORKS`` or the request carries
``Authorization: Bearer <METRICS_TOKEN>``; anything else gets 404, so the endpoint is not
advertised. Behind a proxy every client has the proxy's address: production allows no network by
default and the front does not forward /metrics (docs/operations.md, "Metrics")."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ops.metrics import registry


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[7:].encode(), token.encode())
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(network) for network in settings.METRICS_ALLOWED_NETWORKS
    )


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        raise Http404
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
