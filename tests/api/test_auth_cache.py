"""Token lookups remembered per process (api.auth_cache, issue 12): fewer queries per request, and
nothing that refuses a token waits for an entry to end: a revoked token, a withdrawn role, a
deactivated account are refused from the next request on, also when the change was made by
another process (only the version in the shared cache tells this one)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from api import auth_cache
from core.actors import Actor
from core.roles import Role
from core.tokens import api_token_create, api_token_revoke
from core.users import user_grant_role, user_withdraw_role

pytestmark = pytest.mark.django_db

OFFICER = Actor.system("tests")


@pytest.fixture
def cached(settings: Any) -> None:
    settings.API_AUTH_CACHE_SECONDS = 300
    auth_cache._entries.clear()
    yield
    auth_cache._entries.clear()


def _client(user: Any) -> tuple[APIClient, Any]:
    token, clear = api_token_create(user=user, actor=OFFICER)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {clear}")
    return client, token


def _queries(client: APIClient, path: str = "/api/v1/me") -> tuple[int, int]:
    with CaptureQueriesContext(connection) as seen:
        status = client.get(path).status_code
    return status, len(seen.captured_queries)


def test_a_remembered_token_costs_no_query(make_user: Any, cached: None) -> None:
    client, _ = _client(make_user("auditor"))
    first, looked_up = _queries(client)
    second, remembered = _queries(client)
    assert first == second == 200
    # token (with its account) and roles: two queries the second request does not make
    assert looked_up - remembered == 2


def test_without_the_setting_every_request_reads_the_database(
    make_user: Any, settings: Any
) -> None:
    settings.API_AUTH_CACHE_SECONDS = 0
    client, _ = _client(make_user("auditor"))
    _queries(client)
    assert _queries(client) == _queries(client)
    assert not auth_cache._entries


def test_a_revoked_token_is_refused_at_once(make_user: Any, cached: None) -> None:
    client, token = _client(make_user("auditor"))
    assert client.get("/api/v1/me").status_code == 200
    api_token_revoke(token_id=token.pk, actor=OFFICER)
    assert client.get("/api/v1/me").status_code == 401


def test_a_withdrawn_role_is_effective_at_once(make_user: Any, cached: None) -> None:
    user = make_user("security_officer")
    client, _ = _client(user)
    assert client.get("/api/v1/stations").status_code == 200
    user_withdraw_role(user=user, role=Role.SECURITY_OFFICER, actor=OFFICER)
    assert client.get("/api/v1/stations").status_code == 403
    user_grant_role(user=user, role=Role.SECURITY_OFFICER, actor=OFFICER)
    assert client.get("/api/v1/stations").status_code == 200


def test_a_deactivated_account_is_refused_at_once(make_user: Any, cached: None) -> None:
    user = make_user("auditor")
    client, _ = _client(user)
    assert client.get("/api/v1/me").status_code == 200
    user.is_active = False
    user.save()
    assert client.get("/api/v1/me").status_code == 401


def test_a_change_made_by_another_process_is_seen_through_the_shared_version(
    make_user: Any, cached: None
) -> None:
    client, token = _client(make_user("auditor"))
    assert client.get("/api/v1/me").status_code == 200
    assert auth_cache._entries
    # Another process revokes the token: this process sees only the database row and the
    # version it moved in the shared cache (no signal runs here).
    from django.utils import timezone

    from core.models import ApiToken

    before = cache.get(auth_cache.VERSION_KEY)
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    assert client.get("/api/v1/me").status_code == 200  # the version has not moved yet
    cache.set(auth_cache.VERSION_KEY, "moved-elsewhere", timeout=None)
    assert before != "moved-elsewhere"
    assert client.get("/api/v1/me").status_code == 401


def test_a_lost_version_drops_every_entry(make_user: Any, cached: None) -> None:
    user = make_user("security_officer")
    client, _ = _client(user)
    assert client.get("/api/v1/stations").status_code == 200
    user.groups.clear()  # signals move the version; then the shared cache loses it altogether
    cache.clear()
    assert client.get("/api/v1/stations").status_code == 403


def test_no_clear_token_in_the_entries(make_user: Any, cached: None) -> None:
    user = make_user("auditor")
    _, clear = api_token_create(user=user, actor=OFFICER)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {clear}")
    assert client.get("/api/v1/me").status_code == 200
    assert clear not in repr(auth_cache._entries)
    assert clear not in repr(cache.get(auth_cache.VERSION_KEY))
