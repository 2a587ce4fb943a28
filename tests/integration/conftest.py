"""Fixtures for tests that drive the system as separate processes (manage.py, make run's script)."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

from cardsim.rig import free_port, terminate, wait_until

ROOT = Path(__file__).resolve().parents[2]


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


def serves(base_url: str) -> bool:
    """The server at ``base_url`` answers HTTP (an API 401 counts)."""
    try:
        urllib.request.urlopen(f"{base_url}/api/v1/me", timeout=2)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


@contextlib.contextmanager
def server(env: dict[str, str], *, log: Path) -> Iterator[str]:
    """``manage.py runserver`` on a free port with ``env``; yields its base URL. Its logs (standard
    error) go to ``log``, its banner (standard output) beside it."""
    base_url = f"http://127.0.0.1:{free_port()}"
    with log.open("ab") as err, log.with_suffix(".out").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", base_url[7:], "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
        )
    try:

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            return serves(base_url)

        wait_until(up, timeout=60, what="the server")
        yield base_url
    finally:
        terminate(proc)


def manage(env: dict[str, str], *args: str, check: bool = True, stdin: str | None = None) -> str:
    """``manage.py ARGS`` with ``env`` (and ``stdin``: e.g. an officer's password line); its
    standard output (its error output on failure)."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check:
        assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stderr}"
        return result.stdout
    assert result.returncode != 0, f"manage.py {' '.join(args)} succeeded:\n{result.stdout}"
    return result.stderr
