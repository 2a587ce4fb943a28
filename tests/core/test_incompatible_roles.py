"""Issue 11 §4: roles that cannot be held together, and a first administrator who is a security
officer only (bootstrap_admin gave one account every role)."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from core.actors import Actor
from core.errors import PolicyViolation
from core.models import AuditEvent
from core.role_names import incompatibility
from core.roles import Role, roles_of, roles_of_account
from core.users import user_grant_role

pytestmark = pytest.mark.django_db

ACTING = [Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT, Role.SECURITY_OFFICER]
PEOPLE = [*ACTING, Role.AUDITOR]
INCOMPATIBLE = [(Role.AUDITOR, r) for r in ACTING] + [(Role.STATION, r) for r in PEOPLE]


def test_the_incompatibility_table():
    for first, second in INCOMPATIBLE:
        assert incompatibility({first, second}) is not None
    assert incompatibility(set(ACTING)) is None
    assert incompatibility({Role.AUDITOR}) is None and incompatibility({Role.STATION}) is None


@pytest.mark.parametrize("held, adding", INCOMPATIBLE + [(b, a) for a, b in INCOMPATIBLE])
def test_grant_role_refuses_an_incompatible_role(held, adding, make_user):
    user = make_user(held.value)
    before = AuditEvent.objects.count()
    with pytest.raises(PolicyViolation):
        user_grant_role(user=user, role=adding, actor=Actor.system("tests"))
    assert roles_of_account(user) == {held} and AuditEvent.objects.count() == before


def test_the_command_line_says_why(make_user):
    make_user("issuance_operator", username="olga")
    with pytest.raises(CommandError, match="auditor"):
        call_command("grant_role", "olga", "auditor", stdout=io.StringIO())


@pytest.mark.parametrize("held, adding", INCOMPATIBLE)
def test_every_path_that_sets_groups_is_guarded(held, adding, make_user):
    """Not only grant_role: groups.add / groups.set / group.user_set.add are refused too."""
    user = make_user(held.value)
    group = Group.objects.get_or_create(name=adding.value)[0]
    held_group = Group.objects.get(name=held.value)
    for attempt in (
        lambda: user.groups.add(group),
        lambda: user.groups.set([held_group, group]),
        lambda: group.user_set.add(user),
    ):
        with pytest.raises(PolicyViolation), transaction.atomic():
            attempt()
    assert roles_of_account(User.objects.get(pk=user.pk)) == {held}


def test_the_first_administrator_is_a_security_officer_only():
    out = io.StringIO()
    call_command("bootstrap_admin", stdout=out)
    admin = User.objects.get(username="admin")
    assert roles_of(admin) == {Role.SECURITY_OFFICER}
    event = AuditEvent.objects.get(action="user.create")
    assert event.details["roles"] == ["security_officer"]
    password = out.getvalue().split("password: ")[1].split()[0]
    assert password not in str(event.details)
