"""Who is behind an API token, remembered for a few seconds in each web process (issue 12: the
token, role and station-certificate lookups were three queries on every station round trip).

An entry lives ``API_AUTH_CACHE_SECONDS`` at most and only while the *version* in the shared
cache (Redis in production: every web process reads the same value) is the one it was made
under. Any change that could refuse a token moves the version: a token saved (revoked) or
deleted, an account saved (deactivated, password changed) or deleted, a role granted or
withdrawn (group membership, a group renamed or deleted), a station saved (disabled, its
certificate replaced). The version moves at once and again when the transaction commits (an
entry made from the old rows in between is dropped too), so a revoked token or a withdrawn
role is refused from the next request on, in every process. An expired token is refused by
its stored expiry. Without a cache shared by the processes (the embedded default's local
memory) the setting is 0: no entry is kept.

Entries hold the rows' values, never the clear token (the key is its SHA-256 digest); each
request gets its own fresh ``User`` and ``ApiToken`` objects made from them.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils import timezone

from cms.models import Station
from core.models import ApiToken
from core.roles import Role, roles_of
from core.tokens import api_token_user, token_digest

log = logging.getLogger(__name__)

VERSION_KEY = "api-auth:version"
# Bounds the memory of a process that sees many distinct tokens: past it, start afresh.
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Identity:
    """The account behind a token, its roles, and (for a station) its certificate's SHA-256."""

    user: User
    token: ApiToken
    station_fingerprint: str | None


@dataclass
class _Entry:
    version: str
    deadline: float
    user: tuple[Any, ...]
    token: tuple[Any, ...]
    roles: frozenset[Role]
    station_fingerprint: str | None


_entries: dict[str, _Entry] = {}
_lock = threading.Lock()
_USER_FIELDS = [f.attname for f in User._meta.concrete_fields]
_TOKEN_FIELDS = [f.attname for f in ApiToken._meta.concrete_fields]


def _seconds() -> float:
    return float(getattr(settings, "API_AUTH_CACHE_SECONDS", 0) or 0)


def _version() -> str | None:
    """The current version, made if the shared cache lost it; None if the cache is down."""
    try:
        version = cache.get(VERSION_KEY)
        if version is None:
            cache.add(VERSION_KEY, secrets.token_hex(8), timeout=None)
            version = cache.get(VERSION_KEY)
    except Exception:
        log.warning("API authentication cache unavailable; reading the database")
        return None
    return str(version) if version is not None else None


def auth_version_bump() -> None:
    """Drop every process's entries: now, and again once the current transaction commits."""

    def bump() -> None:
        try:
            cache.set(VERSION_KEY, secrets.token_hex(8), timeout=None)
        except Exception:
            log.error("API authentication cache: could not move the version")

    bump()
    transaction.on_commit(bump)


def _station_fingerprint(user: User) -> str | None:
    return (
        Station.objects.filter(account=user)
        .values_list("certificate__fingerprint_sha256", flat=True)
        .first()
    )


def _from_database(clear: str) -> Identity | None:
    found = api_token_user(clear=clear)
    if found is None:
        return None
    user, token = found
    fingerprint = None
    if settings.STATION_CERTIFICATE_BINDING and Role.STATION in roles_of(user):
        fingerprint = _station_fingerprint(user)
    return Identity(user, token, fingerprint)


def _rebuild(entry: _Entry) -> tuple[User, ApiToken]:
    user = User.from_db("default", _USER_FIELDS, entry.user)
    setattr(user, "_core_roles", entry.roles)  # noqa: B010 - core.roles' per-request cache
    token = ApiToken.from_db("default", _TOKEN_FIELDS, entry.token)
    token.user = user
    return user, token


def token_identity(clear: str) -> Identity | None:
    """The active account behind ``clear`` (None: unknown, revoked, expired or inactive)."""
    seconds = _seconds()
    version = _version() if seconds > 0 else None
    if version is None:
        return _from_database(clear)
    digest = token_digest(clear)
    now = time.monotonic()
    entry = _entries.get(digest)
    if entry is not None and entry.version == version and entry.deadline > now:
        user, token = _rebuild(entry)
        wall = timezone.now()
        if token.expires_at is not None and token.expires_at <= wall:
            _entries.pop(digest, None)
            return None
        # Touch at most once a minute, as core.tokens.api_token_user does.
        if token.last_used_at is None or (wall - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=wall)
            token.last_used_at = wall
            entry.token = tuple(getattr(token, name) for name in _TOKEN_FIELDS)
        return Identity(user, token, entry.station_fingerprint)
    found = _from_database(clear)
    if found is None:
        _entries.pop(digest, None)
        return None
    with _lock:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        _entries[digest] = _Entry(
            version=version,
            deadline=now + seconds,
            user=tuple(getattr(found.user, name) for name in _USER_FIELDS),
            token=tuple(getattr(found.token, name) for name in _TOKEN_FIELDS),
            roles=roles_of(found.user),
            station_fingerprint=found.station_fingerprint,
        )
    return found


def _changed(**_: Any) -> None:
    auth_version_bump()


def _station_saved(sender: Any, update_fields: Any = None, **_: Any) -> None:
    # A station's heartbeat writes only last_seen_at (no bearing on its credential).
    if update_fields is not None and set(update_fields) <= {"last_seen_at"}:
        return
    auth_version_bump()


def _token_saved(sender: Any, update_fields: Any = None, **_: Any) -> None:
    if update_fields is not None and set(update_fields) <= {"last_used_at"}:
        return
    auth_version_bump()


def _user_saved(sender: Any, update_fields: Any = None, **_: Any) -> None:
    # A sign-in writes only last_login.
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    auth_version_bump()


def connect() -> None:
    """Called once from ``ApiConfig.ready``."""
    post_save.connect(_token_saved, sender=ApiToken, dispatch_uid="api.auth_cache.token")
    post_delete.connect(_changed, sender=ApiToken, dispatch_uid="api.auth_cache.token_del")
    post_save.connect(_user_saved, sender=User, dispatch_uid="api.auth_cache.user")
    post_delete.connect(_changed, sender=User, dispatch_uid="api.auth_cache.user_del")
    post_save.connect(_changed, sender=Group, dispatch_uid="api.auth_cache.group")
    post_delete.connect(_changed, sender=Group, dispatch_uid="api.auth_cache.group_del")
    m2m_changed.connect(_changed, sender=User.groups.through, dispatch_uid="api.auth_cache.m2m")
    post_save.connect(_station_saved, sender=Station, dispatch_uid="api.auth_cache.station")
    post_delete.connect(_changed, sender=Station, dispatch_uid="api.auth_cache.station_del")
