"""Guards on accounts, whichever code path is taken (issue 11 §4, §5).

Role groups are granted through ``core.users`` (audited); the first guard refuses incompatible
roles on every path that adds a group to an account. Sign-ins, console, admin or API token, good
or bad, each write an audit event (Django's ``user_logged_in`` / ``user_login_failed``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import transaction
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver

from core.roles import Role, roles_compatible_check


def _roles(group_names: Any) -> frozenset[Role]:
    valid = {role.value for role in Role}
    return frozenset(Role(name) for name in group_names if name in valid)


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="core.roles_compatible")
def _refuse_incompatible_roles(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **_: Any
) -> None:
    if action != "pre_add" or not pk_set:
        return
    if not reverse:  # user.groups.add(groups…)
        names = Group.objects.filter(pk__in=pk_set).values_list("name", flat=True)
        roles_compatible_check(user=instance, adding=_roles(names))
        return
    adding = _roles([instance.name])  # group.user_set.add(users…)
    if adding:
        for user in User.objects.filter(pk__in=pk_set):
            roles_compatible_check(user=user, adding=adding)


def _channel(request: Any) -> str:
    path = str(getattr(request, "path", "") or "")
    if path.startswith("/admin/"):
        return "admin"
    if path.startswith("/api/"):
        return "api_token"
    return "console"


def sign_in_audit(*, request: Any, username: str, success: bool, why: str = "") -> None:
    """One audit event per sign-in, good or bad: the user name tried, the channel, the client
    address; never the password."""
    from core.actors import Actor
    from core.addresses import client_address
    from core.audit import audit_event_create

    user = User.objects.filter(username=username).first() if username else None
    details: dict[str, object] = {
        "username": username[:150],
        "channel": _channel(request),
        "address": client_address(request),
    }
    if why:
        details["why"] = why
    with transaction.atomic():
        audit_event_create(
            actor=Actor.for_user(user) if success and user else Actor.system("sign-in"),
            action="auth.sign_in" if success else "auth.sign_in_failed",
            object_type="user",
            object_id=str(user.pk) if user is not None else "",
            details=details,
        )


@receiver(user_logged_in, dispatch_uid="core.sign_in_audit")
def _signed_in(sender: Any, request: Any, user: Any, **_: Any) -> None:
    sign_in_audit(request=request, username=user.get_username(), success=True)


@receiver(user_login_failed, dispatch_uid="core.sign_in_failed_audit")
def _sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **_: Any
) -> None:
    username = credentials.get("username")
    sign_in_audit(
        request=request,
        username=username if isinstance(username, str) else "",
        success=False,
        why="wrong user name or password, or inactive account",
    )


@receiver(pre_save, sender=User, dispatch_uid="core.password_change_watch")
def _password_change_watch(sender: Any, instance: Any, **_: Any) -> None:
    if instance.pk is None:
        return
    old = User.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._core_password_changed = old is not None and old != instance.password


@receiver(post_save, sender=User, dispatch_uid="core.password_change_revokes_tokens")
def _password_change_revokes_tokens(sender: Any, instance: Any, created: bool, **_: Any) -> None:
    """A password change (whatever changed it: ``changepassword``, a console page) is audited
    and revokes the person's API tokens (issue 11 §5), in the same transaction as the change
    when the caller holds one."""
    if created or not getattr(instance, "_core_password_changed", False):
        return
    instance._core_password_changed = False
    from core.actors import Actor
    from core.audit import audit_event_create
    from core.tokens import api_tokens_revoke_all

    actor = Actor.system("password-change")
    with transaction.atomic():
        revoked = api_tokens_revoke_all(user=instance, actor=actor, why="password changed")
        audit_event_create(
            actor=actor,
            action="user.password_change",
            object_type="user",
            object_id=str(instance.pk),
            details={"username": instance.get_username(), "tokens_revoked": revoked},
        )
