"""Issue 11 §5: API tokens expire, are listed and revoked by their owner and by a security
officer (no one else), and a password change revokes the person's tokens."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from core.actors import Actor
from core.models import ApiToken, AuditEvent
from core.tokens import api_token_create

pytestmark = pytest.mark.django_db


def _client(clear: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {clear}")
    return client


def _token(user, label=""):
    return api_token_create(user=user, actor=Actor.system("tests"), label=label)


def test_every_token_gets_an_expiry_and_is_refused_after_it(make_user, settings):
    settings.API_TOKEN_LIFETIME_DAYS = 2
    settings.API_TOKEN_STATION_LIFETIME_DAYS = 7
    person, station = make_user("helpdesk_agent"), make_user("station")
    token, clear = _token(person)
    station_token, _ = _token(station)
    assert token.expires_at is not None and station_token.expires_at > token.expires_at
    assert _client(clear).get("/api/v1/me").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(days=1))
    assert _client(clear).get("/api/v1/me").status_code == 401


def test_the_owner_lists_and_revokes_their_own_and_nobody_else_s(make_user):
    alice, bob = make_user("issuance_operator"), make_user("helpdesk_agent")
    _, alice_clear = _token(alice, "laptop")
    bob_token, bob_clear = _token(bob)
    listed = _client(alice_clear).get("/api/v1/auth/tokens").json()["results"]
    assert [t["label"] for t in listed] == ["laptop"]
    assert alice_clear not in str(listed) and "digest" not in listed[0]
    assert (
        _client(alice_clear).get(f"/api/v1/auth/tokens?username={bob.username}").status_code == 403
    )
    refused = _client(alice_clear).post(f"/api/v1/auth/tokens/{bob_token.pk}/revoke")
    assert refused.status_code == 404
    assert _client(bob_clear).get("/api/v1/me").status_code == 200
    revoked = _client(bob_clear).post(f"/api/v1/auth/tokens/{bob_token.pk}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert _client(bob_clear).get("/api/v1/me").status_code == 401
    event = AuditEvent.objects.filter(action="api_token.revoke").last()
    assert event.actor_label == bob.username


def test_a_security_officer_lists_and_revokes_anyone_s(make_user):
    officer, victim = make_user("security_officer"), make_user("issuance_operator")
    _, officer_clear = _token(officer)
    victim_token, victim_clear = _token(victim, "stolen laptop")
    officer_client = _client(officer_clear)
    listed = officer_client.get(f"/api/v1/auth/tokens?username={victim.username}").json()
    assert [t["id"] for t in listed["results"]] == [victim_token.pk]
    assert officer_client.get("/api/v1/auth/tokens?username=a%00b").status_code == 400
    assert officer_client.post(f"/api/v1/auth/tokens/{victim_token.pk}/revoke").status_code == 200
    assert _client(victim_clear).get("/api/v1/me").status_code == 401
    assert AuditEvent.objects.filter(action="api_token.revoke").last().actor_label == (
        officer.username
    )


def test_a_password_change_revokes_the_person_s_tokens(make_user):
    user = make_user("issuance_operator")
    _, first = _token(user)
    _, second = _token(user)
    user.first_name = "Olga"
    user.save()  # not a password change: nothing revoked
    assert _client(first).get("/api/v1/me").status_code == 200
    user = User.objects.get(pk=user.pk)
    user.set_password("another long passphrase")
    user.save()
    assert _client(first).get("/api/v1/me").status_code == 401
    assert _client(second).get("/api/v1/me").status_code == 401
    events = AuditEvent.objects.filter(action="api_token.revoke")
    assert events.count() == 2 and {e.details["why"] for e in events} == {"password changed"}
    assert "another long passphrase" not in str(list(events.values_list("details", flat=True)))
    change = AuditEvent.objects.get(action="user.password_change")
    assert change.details == {"username": user.username, "tokens_revoked": 2}
    assert user.password not in str(change.details)
