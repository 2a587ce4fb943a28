"""A failed-sign-in limiter for the console and the admin site, kept in Django's cache.

Failures are counted per user name and per client address over a window; once either count
reaches its limit the sign-in is refused (without checking the password) until the window
ends. A successful sign-in clears the user name's count. With several web processes the cache
must be shared (Redis, Memcached, database cache) for the limit to hold across them.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from core.signals import sign_in_audit


def _limits() -> tuple[int, int, int]:
    return (
        int(getattr(settings, "LOGIN_FAILURES_PER_USER", 5)),
        int(getattr(settings, "LOGIN_FAILURES_PER_ADDRESS", 20)),
        int(getattr(settings, "LOGIN_FAILURE_WINDOW_SECONDS", 900)),
    )


def _keys(username: str, address: str) -> tuple[str, str]:
    # Hashed: cache keys stay short and valid whatever a visitor types as a user name.
    user = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    addr = hashlib.sha256(address.encode()).hexdigest()[:32]
    return f"login-fail:user:{user}", f"login-fail:addr:{addr}"


def client_address(request: HttpRequest | None) -> str:
    """The client's address: REMOTE_ADDR, unless the request comes from a declared proxy
    (``CMS_TRUSTED_PROXIES``, as for the station certificate in ``api.authentication``); then
    the address that proxy put last in X-Forwarded-For (deploy/nginx sets it to the client's).
    Behind the front every REMOTE_ADDR is the proxy's: keyed on it, one visitor's failures
    would lock everyone out. A client's own X-Forwarded-For is believed from no one else."""
    if request is None:
        return ""
    remote = str(request.META.get("REMOTE_ADDR", ""))
    if remote in settings.CMS_TRUSTED_PROXIES:
        forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")[-1].strip()
        if forwarded:
            return forwarded
    return remote


def login_blocked(username: str, address: str) -> bool:
    per_user, per_address, _window = _limits()
    user_key, addr_key = _keys(username, address)
    counts = cache.get_many([user_key, addr_key])
    return int(counts.get(user_key, 0)) >= per_user or int(counts.get(addr_key, 0)) >= per_address


def login_failure_record(username: str, address: str) -> None:
    _per_user, _per_address, window = _limits()
    for key in _keys(username, address):
        if not cache.add(key, 1, timeout=window):
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=window)


def login_success_record(username: str, address: str) -> None:
    cache.delete(_keys(username, address)[0])


TOO_MANY = _(
    "Too many failed sign-ins for this account or from this address. Wait %(minutes)d minutes "
    "and try again, or ask a security officer to check the account."
)


class LimitedLoginMixin:
    """Refuses sign-ins over the limit before the password is checked; counts failures."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]
    error_messages: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        address = client_address(self.request)
        if login_blocked(username, address):
            sign_in_audit(
                request=self.request, username=username, success=False, why="too many failures"
            )
            minutes = max(1, _limits()[2] // 60)
            raise forms.ValidationError(TOO_MANY, code="rate_limited", params={"minutes": minutes})
        try:
            cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]
        except forms.ValidationError:
            login_failure_record(username, address)
            raise
        login_success_record(username, address)
        return cleaned


class LimitedAuthenticationForm(LimitedLoginMixin, AuthenticationForm):
    pass


class LimitedAdminAuthenticationForm(LimitedLoginMixin, AdminAuthenticationForm):
    pass
