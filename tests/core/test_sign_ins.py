"""Issue 11 §5: no Django User/Group admin pages; every sign-in, good or bad, audited (console,
admin, API token) with the user name tried and the client address, never the password."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from core.models import AuditEvent

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def superuser(make_user):
    user = make_user("security_officer", username="root")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


@pytest.mark.parametrize(
    "page", ["/admin/auth/user/", "/admin/auth/group/", "/admin/auth/user/add/"]
)
def test_the_admin_serves_no_account_or_group_page(page, superuser):
    client = Client()
    client.force_login(superuser)
    assert client.get(page).status_code == 404
    assert client.get("/admin/").status_code == 200


def _events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


@pytest.mark.parametrize("url", ["/console/login/", "/admin/login/"])
def test_a_failed_and_a_good_sign_in_are_audited(url, superuser):
    client = Client(REMOTE_ADDR="192.0.2.7")
    client.post(url, {"username": "root", "password": "wrong password"})
    client.post(url, {"username": "nobody", "password": "guess"})
    failed = _events("auth.sign_in_failed")
    assert [e.details["username"] for e in failed] == ["root", "nobody"]
    channel = "admin" if url.startswith("/admin/") else "console"
    assert {e.details["channel"] for e in failed} == {channel}
    assert {e.details["address"] for e in failed} == {"192.0.2.7"}
    client.post(url, {"username": "root", "password": PASSWORD})
    (good,) = _events("auth.sign_in")
    assert good.actor_label == "root" and good.details["address"] == "192.0.2.7"
    every = str(list(AuditEvent.objects.values_list("details", flat=True)))
    assert "wrong password" not in every and "guess" not in every and PASSWORD not in every


def test_token_creation_is_a_sign_in_audited_both_ways(superuser):
    from rest_framework.test import APIClient

    client = APIClient(REMOTE_ADDR="198.51.100.4")
    bad = client.post(
        "/api/v1/auth/token", {"username": "root", "password": "not it"}, format="json"
    )
    assert bad.status_code == 401
    good = client.post(
        "/api/v1/auth/token", {"username": "root", "password": PASSWORD}, format="json"
    )
    assert good.status_code == 201 and good.json()["expires_at"]
    (failed,) = _events("auth.sign_in_failed")
    (signed,) = _events("auth.sign_in")
    for event in (failed, signed):
        assert event.details["channel"] == "api_token"
        assert event.details["address"] == "198.51.100.4"
    assert "not it" not in str(failed.details) and PASSWORD not in str(signed.details)


def test_a_blocked_sign_in_is_audited_too(superuser, settings):
    settings.LOGIN_FAILURES_PER_USER = 1
    client = Client(REMOTE_ADDR="192.0.2.8")
    client.post("/console/login/", {"username": "root", "password": "wrong"})
    client.post("/console/login/", {"username": "root", "password": PASSWORD})
    failed = _events("auth.sign_in_failed")
    assert len(failed) == 2 and failed[-1].details["why"] == "too many failures"
    assert not _events("auth.sign_in")
    assert User.objects.get(username="root").last_login is None
