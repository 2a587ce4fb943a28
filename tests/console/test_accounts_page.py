"""Accounts and roles through the console (security officers): passwords shown once, every
change audited, never a password in an audit event."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from core.models import AuditEvent
from core.roles import Role, roles_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer(client, make_user):
    user = make_user("security_officer", username="sophie")
    client.force_login(user)
    return user


def test_create_grant_withdraw_and_reset(client, officer):
    response = client.post(
        reverse("console:account_create"),
        {"username": "nadia", "roles": ["issuance_operator", "helpdesk_agent", "station"]},
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    password = response.context["password"]
    nadia = User.objects.get(username="nadia")
    assert nadia.check_password(password)
    assert roles_of(nadia) == {Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT}  # no machine role

    role_url = reverse("console:account_role", args=[nadia.pk])
    # An auditor's role beside acting ones is refused (issue 11 §4), visibly, and changes nothing.
    refused = client.post(role_url, {"role": "auditor", "decision": "grant"}, follow=True)
    assert "auditor" in refused.content.decode().lower()
    client.post(role_url, {"role": "helpdesk_agent", "decision": "withdraw"})
    client.post(role_url, {"role": "security_officer", "decision": "grant"})
    nadia = User.objects.get(pk=nadia.pk)
    assert roles_of(nadia) == {Role.ISSUANCE_OPERATOR, Role.SECURITY_OFFICER}

    reset = client.post(reverse("console:account_password", args=[nadia.pk]))
    new_password = reset.context["password"]
    nadia.refresh_from_db()
    assert new_password != password and nadia.check_password(new_password)
    assert password not in client.get(reverse("console:account", args=[nadia.pk])).content.decode()

    events = AuditEvent.objects.filter(object_type="user", object_id=str(nadia.pk))
    assert [e.action for e in events.order_by("seq")] == [
        "user.create",
        "user.grant_role",
        "user.grant_role",
        "user.withdraw_role",
        "user.grant_role",
        "user.password_change",  # core.signals: whatever changes a password (tokens revoked)
        "user.reset_password",
    ]
    assert {e.actor_label for e in events if e.action != "user.password_change"} == {"sophie"}
    for event in events:
        assert password not in str(event.details) and new_password not in str(event.details)


def test_a_taken_or_bad_user_name_is_refused_and_nothing_is_created(client, officer):
    taken = client.post(reverse("console:account_create"), {"username": "sophie"}, follow=True)
    assert "is taken" in taken.content.decode()
    bad = client.post(reverse("console:account_create"), {"username": "a b"}, follow=True)
    assert "1 to 150" in bad.content.decode()
    assert User.objects.count() == 1


def test_an_officer_does_not_withdraw_their_own_officer_role(client, officer):
    client.post(
        reverse("console:account_role", args=[officer.pk]),
        {"role": "security_officer", "decision": "withdraw"},
    )
    assert Role.SECURITY_OFFICER in roles_of(User.objects.get(pk=officer.pk))
