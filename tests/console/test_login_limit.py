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


PROXY = "127.0.0.1"


def _via_proxy(client, username, password, address):
    """A sign-in as it reaches Django behind the front: from the proxy, with the client's
    address in X-Forwarded-For (deploy/nginx/proxy-params.conf)."""
    return client.post(
        "/console/login/", {"username": username, "password": password},
        REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=address,
    )  # fmt: skip


def test_behind_the_proxy_the_limit_keys_on_the_client_not_on_the_proxy(
    client, make_user, settings
):
    """One visitor guessing user names through the front must not lock out everyone else who
    comes through the same front."""
    settings.CMS_TRUSTED_PROXIES = [PROXY]
    for n in range(5):
        _via_proxy(client, f"nobody{n}", "wrong", "203.0.113.66")
    user = make_user("auditor")
    assert _via_proxy(client, user.username, PASSWORD, "198.51.100.7").status_code == 302
    client.logout()
    blocked = _via_proxy(client, user.username, PASSWORD, "203.0.113.66")
    assert blocked.status_code == 200 and "Too many failed sign-ins" in blocked.content.decode()


def test_x_forwarded_for_from_an_undeclared_sender_is_not_believed(client, make_user, settings):
    settings.CMS_TRUSTED_PROXIES = [PROXY]
    for n in range(5):  # a client rotating forged addresses, straight to the server
        client.post(
            "/console/login/", {"username": f"nobody{n}", "password": "wrong"},
            REMOTE_ADDR="203.0.113.66", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
        )  # fmt: skip
    user = make_user("auditor")
    response = _sign_in(client, "/console/login/", user.username, PASSWORD, address="203.0.113.66")
    assert response.status_code == 200 and "Too many failed sign-ins" in response.content.decode()
