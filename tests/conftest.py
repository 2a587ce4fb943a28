"""Shared fixtures: accounts with roles, authenticated API clients, and the database banner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Print the database the suite runs on (the CI log must show PostgreSQL and its version)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        return [f"database: {db['ENGINE']} (not PostgreSQL)"]
    import psycopg

    try:
        with psycopg.connect(
            host=db["HOST"] or None,
            port=db["PORT"] or None,
            user=db["USER"] or None,
            password=db["PASSWORD"] or None,
            dbname="postgres",
            connect_timeout=5,
        ) as conn:
            version = conn.execute("SHOW server_version").fetchone()
    except psycopg.OperationalError as exc:
        return [f"database: PostgreSQL unreachable ({exc})"]
    return [f"database: PostgreSQL {version[0] if version else '?'} at {db['HOST']}:{db['PORT']}"]


@pytest.fixture
def make_user(db: Any) -> Callable[..., Any]:
    """``make_user("auditor", username=...)``: an active account holding the given roles."""
    from django.contrib.auth.models import Group, User

    counter = {"n": 0}

    def _make(*roles: str, username: str | None = None) -> User:
        counter["n"] += 1
        user = User.objects.create_user(
            username=username or f"user{counter['n']}-{'-'.join(roles) or 'none'}",
            password="correct horse battery staple",
        )
        # get_or_create: transactional tests flush the groups the data migration made.
        user.groups.set([Group.objects.get_or_create(name=role)[0] for role in roles])
        return user

    return _make


@pytest.fixture
def api_client_for(make_user: Callable[..., Any]) -> Callable[..., Any]:
    """``api_client_for("auditor")``: a DRF client authenticated with a real API token."""
    from rest_framework.test import APIClient

    from core.actors import Actor
    from core.tokens import api_token_create

    def _client(*roles: str) -> APIClient:
        user = make_user(*roles)
        _, clear = api_token_create(user=user, actor=Actor.system("tests"))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {clear}")
        client.user = user  # type: ignore[attr-defined]
        return client

    return _client
