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


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark what must never run beside another test as ``serial`` (the topology's fixed ports), and,
    in a parallel run (``make test`` uses pytest-xdist), hand out the modules of real-service tests
    first: they are the longest, and a long module dealt last leaves the other workers idle."""
    import os

    for item in items:
        if "topology" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.serial)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("integration") is None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: a missing daemon or tool must not pass for green."""
    import os

    if not os.environ.get("CI") or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        for report in skipped:
            print(f"skipped in CI: {report.nodeid}: {report.longrepr}")  # noqa: T201
        session.exitstatus = 1


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


@pytest.fixture
def celery_worker_process(transactional_db: Any) -> Any:
    """A real Celery worker process on the Redis broker, sharing this test's PostgreSQL database.

    The test's own Celery app sends to the same broker for the duration of the test.
    """
    import os
    import secrets
    import subprocess
    import sys
    import time
    from pathlib import Path

    from django.db import connection

    from config.celery import app

    db = connection.settings_dict
    database_url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    # A Redis database of its own, so that parallel runs on one machine don't take each other's
    # tasks: the xdist workers of one run (gw0, gw1, gw2) each draw from their own third of 1-15.
    xdist_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    third = int(xdist_worker) % 3 if xdist_worker.isdigit() else 0
    broker_url = f"redis://127.0.0.1:6379/{1 + third * 5 + secrets.randbelow(5)}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    root = Path(__file__).resolve().parent.parent
    log_path = root / "var" / f"celery-worker-{os.getpid()}.log"
    log_path.parent.mkdir(exist_ok=True)
    log = log_path.open("w")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "default,signing",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "INFO",
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(120):
            if "ready." in log_path.read_text() or worker.poll() is not None:
                break
            time.sleep(0.5)
        assert worker.poll() is None, f"Celery worker died:\n{log_path.read_text()}"
        saved = (app.conf.broker_url, app.conf.task_always_eager)
        app.conf.broker_url, app.conf.task_always_eager = broker_url, False
        _reset_producer_pool(app)
        try:
            yield worker
        finally:
            app.conf.broker_url, app.conf.task_always_eager = saved
            _reset_producer_pool(app)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()


def _reset_producer_pool(app: Any) -> None:
    """Drop pooled broker connections so the next send uses the broker URL now configured."""
    from kombu import pools

    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    # kombu keeps producer pools per broker URL in a global registry: a later test that draws the
    # same Redis database would otherwise get a pool whose connections were closed above.
    pools.reset()


def wait_until(predicate: Callable[[], Any], *, attempts: int = 120, interval: float = 0.5) -> Any:
    """Poll until ``predicate()`` is truthy; a bounded wait for work done by another process."""
    from cardsim.rig import wait_until as bounded_wait

    return bounded_wait(predicate, timeout=attempts * interval, interval=interval)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Any:
    """Rate-limit counters live in the cache: each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
