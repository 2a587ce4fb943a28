"""Failed sign-ins are limited per user name and per client address (console and admin)."""

from __future__ import annotations

import pytest
from django.core.cache import cache

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # make_user's password


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.LOGIN_FAILURES_PER_USER = 3
    settings.LOGIN_FAILURES_PER_ADDRESS = 5
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 600
    cache.clear()
    yield
    cache.clear()


def _sign_in(client, url, username, password, address="192.0.2.10"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_the_console_refuses_even_the_right_password_after_too_many_failures(client, make_user):
    user = make_user("auditor")
    for _ in range(3):
        response = _sign_in(client, "/console/login/", user.username, "wrong")
        assert response.status_code == 200
        assert "Wrong user name or password" in response.content.decode()
    blocked = _sign_in(client, "/console/login/", user.username, PASSWORD)
    html = blocked.content.decode()
    assert blocked.status_code == 200 and "Too many failed sign-ins" in html
    assert "10 minutes" in html and "_auth_user_id" not in client.session
    # another user name from another address is not affected
    other = make_user("auditor")
    ok = _sign_in(client, "/console/login/", other.username, PASSWORD, address="192.0.2.99")
    assert ok.status_code == 302


def test_a_success_clears_the_user_name_count(client, make_user):
    user = make_user("auditor")
    for _ in range(2):
        _sign_in(client, "/console/login/", user.username, "wrong")
    assert _sign_in(client, "/console/login/", user.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        _sign_in(client, "/console/login/", user.username, "wrong")
    assert _sign_in(client, "/console/login/", user.username, PASSWORD).status_code == 302


def test_one_address_guessing_many_user_names_is_limited(client, make_user):
    for n in range(5):
        _sign_in(client, "/console/login/", f"nobody{n}", "wrong")
    user = make_user("auditor")
    response = _sign_in(client, "/console/login/", user.username, PASSWORD)
    assert response.status_code == 200 and "Too many failed sign-ins" in response.content.decode()
    ok = _sign_in(client, "/console/login/", user.username, PASSWORD, address="198.51.100.7")
    assert ok.status_code == 302


def test_the_admin_login_is_limited_too(client, make_user):
    from django.contrib.auth.models import User

    admin = User.objects.create_user("admin-x", password=PASSWORD, is_staff=True)
    for _ in range(3):
        assert _sign_in(client, "/admin/login/", admin.username, "wrong").status_code == 200
    blocked = _sign_in(client, "/admin/login/", admin.username, PASSWORD)
    assert blocked.status_code == 200 and "Too many failed sign-ins" in blocked.content.decode()
