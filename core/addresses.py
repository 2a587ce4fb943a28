"""The client address of a request, as the proxy setting yields it (not a forgeable header)."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def client_address(request: Any) -> str:
    """``REMOTE_ADDR``, or with ``NUM_PROXIES`` proxies in front the address that many hops
    back in ``X-Forwarded-For`` (the same rule as the API's rate limits)."""
    if request is None:
        return ""
    meta = getattr(request, "META", {})
    remote = str(meta.get("REMOTE_ADDR", ""))
    proxies = int(str(settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0))
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if proxies > 0 and forwarded:
        hops = [a.strip() for a in str(forwarded).split(",") if a.strip()]
        if hops:
            return str(hops[-min(proxies, len(hops))])
    return remote
