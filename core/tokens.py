"""API tokens: random, shown once, stored as a SHA-256 digest, expiring, revocable.

A person's token lasts ``API_TOKEN_LIFETIME_DAYS`` (30 by default), a station's
``API_TOKEN_STATION_LIFETIME_DAYS`` (365). Owners list and revoke their own tokens, a security
officer anyone's; a password change revokes all of the person's tokens.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_event_create
from core.errors import BadInput, Forbidden, NotFound
from core.models import ApiToken
from core.roles import Role, roles_of, roles_of_account


def token_lifetime(user: User) -> dt.timedelta:
    station = Role.STATION in roles_of_account(user)
    days = settings.API_TOKEN_STATION_LIFETIME_DAYS if station else settings.API_TOKEN_LIFETIME_DAYS
    return dt.timedelta(days=int(days))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@transaction.atomic
def api_token_create(*, user: User, actor: Actor, label: str = "") -> tuple[ApiToken, str]:
    """Make a new token for ``user``; the clear token is returned here and nowhere else."""
    clear = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        digest=token_digest(clear),
        prefix=clear[:8],
        label=label[:100],
        expires_at=timezone.now() + token_lifetime(user),
    )
    audit_event_create(
        actor=actor,
        action="api_token.create",
        object_type="user",
        object_id=str(user.pk),
        details={
            "username": user.username,
            "token_id": token.pk,
            "label": token.label,
            "expires_at": token.expires_at.isoformat() if token.expires_at else "",
        },
    )
    return token, clear


@transaction.atomic
def api_token_revoke(*, token_id: int, actor: Actor, why: str = "") -> ApiToken:
    token = ApiToken.objects.select_for_update().get(pk=token_id)
    if token.revoked_at is not None:
        return token
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_event_create(
        actor=actor,
        action="api_token.revoke",
        object_type="user",
        object_id=str(token.user_id),
        details={"token_id": token.pk, **({"why": why} if why else {})},
    )
    return token


def _may_manage(caller: User, owner_id: int) -> bool:
    return caller.pk == owner_id or Role.SECURITY_OFFICER in roles_of(caller)


def api_token_list(*, caller: User, username: str | None = None) -> QuerySet[ApiToken]:
    """The caller's own tokens; a security officer may name another account. Newest first;
    revoked and expired ones included (their dates say so)."""
    if username is not None and ("\x00" in username or len(username) > 150):
        raise BadInput("username: a user name of at most 150 characters, without NUL.")
    tokens = ApiToken.objects.select_related("user").order_by("-created_at", "-pk")
    if username is None or username == caller.get_username():
        return tokens.filter(user=caller)
    if Role.SECURITY_OFFICER not in roles_of(caller):
        raise Forbidden("Only a security officer lists another account's tokens.")
    return tokens.filter(user__username=username)


@transaction.atomic
def api_token_revoke_by(*, token_id: int, caller: User) -> ApiToken:
    """Revoke one token: its owner, or a security officer. Revoking twice changes nothing."""
    owner_id = ApiToken.objects.filter(pk=token_id).values_list("user_id", flat=True).first()
    if owner_id is None or not _may_manage(caller, owner_id):
        # Someone else's token is "not found" to a caller who may not manage it.
        raise NotFound(f"No token #{token_id} of yours.")
    return api_token_revoke(token_id=token_id, actor=Actor.for_user(caller))


def api_tokens_revoke_all(*, user: User, actor: Actor, why: str) -> int:
    """Revoke every token of ``user`` still in force (must run in the caller's transaction)."""
    ids = list(
        ApiToken.objects.filter(user=user, revoked_at__isnull=True).values_list("pk", flat=True)
    )
    for token_id in ids:
        api_token_revoke(token_id=token_id, actor=actor, why=why)
    return len(ids)


def api_token_user(*, clear: str) -> tuple[User, ApiToken] | None:
    """The active user behind a token, or None."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(clear), revoked_at__isnull=True, user__is_active=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    # Touch at most once a minute: a busy station must not write on every request.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user, token
