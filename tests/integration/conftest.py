"""Fixtures for tests that drive the system as separate processes (manage.py, make run's script)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import psycopg
import pytest
from django.conf import settings
from psycopg import sql


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


def scratch_database_url(name: str) -> str:
    db = settings.DATABASES["default"]
    return f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{name}"


@pytest.fixture(scope="module")
def scratch_database() -> Iterator[Callable[[], str]]:
    """``new()`` creates an empty PostgreSQL database and returns its URL; all go at module end.

    Named ``test_cps_cms_<pid>_<random>``: scripts/drop-stale-test-dbs.sh drops those of a killed
    run. The processes under test run migrations themselves, as ``make run`` does.
    """
    made: list[str] = []

    def new() -> str:
        name = f"test_cps_cms_{os.getpid()}_{secrets.token_hex(3)}"
        with _admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        return scratch_database_url(name)

    yield new
    with _admin() as conn:
        for name in made:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def clean_environment(*prefixes: str) -> dict[str, str]:
    """This process's environment without the variables that configure the system."""
    drop = ("DJANGO_", "DATABASE_", "CELERY_", "PKI_", "CARD_", "PCSCLITE_", *prefixes)
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}
