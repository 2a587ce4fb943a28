"""Accounts from the command line: created once with a printed password, roles granted and audited."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.core.management.base import CommandError

from core.models import AuditEvent
from core.roles import Role, roles_of

pytestmark = pytest.mark.django_db


def test_grant_role_creates_the_account_once_and_audits_each_change():
    out = io.StringIO()
    call_command("grant_role", "hélène", "helpdesk_agent", "--create", stdout=out)
    password = out.getvalue().split("password: ")[1].split()[0]
    user = authenticate(username="hélène", password=password)
    assert user is not None and roles_of(user) == {Role.HELPDESK_AGENT}
    call_command("grant_role", "hélène", "security_officer", stdout=io.StringIO())
    call_command("grant_role", "hélène", "security_officer", stdout=io.StringIO())  # held
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions == ["user.create", "user.grant_role", "user.grant_role"]
    assert password not in str(list(AuditEvent.objects.values_list("details", flat=True)))


def test_an_unknown_account_is_not_created_without_being_asked():
    with pytest.raises(CommandError, match="add --create"):
        call_command("grant_role", "nobody", "auditor", stdout=io.StringIO())
    assert not AuditEvent.objects.exists()
