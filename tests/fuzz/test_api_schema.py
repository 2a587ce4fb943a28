"""Fuzz every API operation from the OpenAPI schema (schemathesis): bad input is a 4xx, never a 500.

Runs in process against the WSGI application on the test database, with a caller that holds every
role, so that requests get past the permission check and into the views and services.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _keep_the_test_connection(db: Any) -> Any:
    """As Django's test client does: the request cycle must not close the test's connection."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _load_schema() -> Any:
    # The schema view is public and reads no database: it can be loaded at collection time.
    from config.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture
def token(db: Any, make_user: Any) -> str:
    from core.actors import Actor
    from core.roles import Role
    from core.tokens import api_token_create

    user = make_user(*[role.value for role in Role if role != Role.STATION])
    return api_token_create(user=user, actor=Actor.system("fuzz"))[1]


schema = _load_schema()


@schema.parametrize()
@settings(
    # Deterministic in `make test` (CI must not flake); FUZZ_RANDOM=1 FUZZ_EXAMPLES=200 explores.
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "15")),
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_operation_answers_500(case: Any, token: str) -> None:
    response = case.call(headers={"Authorization": f"Token {token}"})
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    )
    if response.status_code >= 400 and response.headers.get("Content-Type", [""])[0].startswith(
        "application/json"
    ):
        assert set(response.json()) >= {"message", "extra"}
