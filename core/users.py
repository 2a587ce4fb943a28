"""Accounts: the bootstrap administrator and role grants, each with its audit event."""

from __future__ import annotations

import secrets

from django.contrib.auth.models import Group, User
from django.db import transaction

from core.actors import Actor
from core.audit import audit_event_create
from core.roles import Role, roles_compatible_check

HUMAN_ROLES = (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT, Role.SECURITY_OFFICER, Role.AUDITOR)
# The first administrator manages stations, keys and accounts; the other roles go to other
# people (issue 11 §4: one account holding every role would be four eyes in one head).
BOOTSTRAP_ROLES = (Role.SECURITY_OFFICER,)


@transaction.atomic
def user_bootstrap_admin(*, username: str = "admin") -> tuple[User, str | None]:
    """Create the first administrator once. Returns the password only when it was just created."""
    existing = User.objects.select_for_update().filter(username=username).first()
    if existing is not None:
        return existing, None
    password = secrets.token_urlsafe(18)
    user = User.objects.create_user(username=username, password=password, is_staff=True)
    user.groups.set(Group.objects.filter(name__in=[role.value for role in BOOTSTRAP_ROLES]))
    audit_event_create(
        actor=Actor.system("bootstrap_admin"),
        action="user.create",
        object_type="user",
        object_id=str(user.pk),
        details={"username": username, "roles": sorted(role.value for role in BOOTSTRAP_ROLES)},
    )
    return user, password


@transaction.atomic
def user_create(*, username: str, actor: Actor) -> tuple[User, str]:
    """A new account without roles; its generated password is returned here and nowhere else."""
    password = secrets.token_urlsafe(18)
    user = User.objects.create_user(username=username, password=password)
    audit_event_create(
        actor=actor,
        action="user.create",
        object_type="user",
        object_id=str(user.pk),
        details={"username": username, "roles": []},
    )
    return user, password


@transaction.atomic
def user_grant_role(*, user: User, role: Role, actor: Actor) -> User:
    """Add a role; granting one already held changes nothing and writes nothing. A role that
    cannot be held with those the account has (an auditor's and an acting role; a station's and
    a person's) is refused with 422 (``core.role_names.incompatibility``)."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.groups.filter(name=role.value).exists():
        return user
    roles_compatible_check(user=user, adding=frozenset({role}))
    user.groups.add(Group.objects.get(name=role.value))
    audit_event_create(
        actor=actor,
        action="user.grant_role",
        object_type="user",
        object_id=str(user.pk),
        details={"username": user.username, "role": role.value},
    )
    return user
