"""Accounts: the bootstrap administrator and role grants, each with its audit event."""

from __future__ import annotations

import re
import secrets

from django.contrib.auth.models import Group, User
from django.db import transaction

from core.actors import Actor
from core.audit import audit_event_create
from core.errors import BadInput, Conflict, Forbidden
from core.roles import Role, roles_compatible_check

USERNAME = re.compile(r"[\w.@+-]+")
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
    # get_or_create: the data migration makes the groups, but a database flushed since (a restore,
    # a transactional test) must not make a valid role impossible to grant.
    user.groups.add(Group.objects.get_or_create(name=role.value)[0])
    audit_event_create(
        actor=actor,
        action="user.grant_role",
        object_type="user",
        object_id=str(user.pk),
        details={"username": user.username, "role": role.value},
    )
    return user


@transaction.atomic
def user_withdraw_role(*, user: User, role: Role, actor: Actor) -> User:
    """Remove a role; withdrawing one not held changes nothing and writes nothing. A security
    officer does not withdraw their own security officer role (someone else must): the console
    would otherwise lose its last manager by a slip."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if not user.groups.filter(name=role.value).exists():
        return user
    if role == Role.SECURITY_OFFICER and actor.kind == "user" and actor.id == str(user.pk):
        raise Forbidden("Another security officer withdraws your security officer role.")
    user.groups.remove(Group.objects.get(name=role.value))
    audit_event_create(
        actor=actor,
        action="user.withdraw_role",
        object_type="user",
        object_id=str(user.pk),
        details={"username": user.username, "role": role.value},
    )
    return user


@transaction.atomic
def user_password_reset(*, user: User, actor: Actor) -> str:
    """A new generated password, returned here and nowhere else (the audit event says only that
    it was reset); the account's sessions end with the old password hash."""
    user = User.objects.select_for_update().get(pk=user.pk)
    password = secrets.token_urlsafe(18)
    user.set_password(password)
    user.save(update_fields=["password"])
    audit_event_create(
        actor=actor,
        action="user.reset_password",
        object_type="user",
        object_id=str(user.pk),
        details={"username": user.username},
    )
    return password


def user_create_checked(*, username: str, actor: Actor) -> tuple[User, str]:
    """``user_create`` with the user name checked: 150 characters at most of letters, digits and
    @.+-_ (Django's rule), not taken already."""
    username = username.strip()
    if not username or len(username) > 150 or not USERNAME.fullmatch(username):
        raise BadInput(
            "A user name is 1 to 150 letters, digits or @.+-_ characters.",
            extra={"fields": {"username": "invalid"}},
        )
    if User.objects.filter(username=username).exists():
        raise Conflict(f"The user name {username!r} is taken.")
    return user_create(username=username, actor=actor)
