"""API tokens: random, shown once, stored as a SHA-256 digest, revocable."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_event_create
from core.models import ApiToken


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@transaction.atomic
def api_token_create(*, user: User, actor: Actor, label: str = "") -> tuple[ApiToken, str]:
    """Make a new token for ``user``; the clear token is returned here and nowhere else."""
    clear = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, digest=token_digest(clear), prefix=clear[:8], label=label[:100]
    )
    audit_event_create(
        actor=actor,
        action="api_token.create",
        object_type="user",
        object_id=str(user.pk),
        details={"username": user.username, "token_id": token.pk, "label": token.label},
    )
    return token, clear


@transaction.atomic
def api_token_revoke(*, token_id: int, actor: Actor) -> ApiToken:
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
        details={"token_id": token.pk},
    )
    return token


def api_token_user(*, clear: str) -> tuple[User, ApiToken] | None:
    """The active user behind a token, or None."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(clear), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    # Touch at most once a minute: a busy station must not write on every request.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user, token
