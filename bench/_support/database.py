"""A PostgreSQL database of its own for one benchmark run, migrated, dropped afterwards."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def bench_database(suffix: str, *, keep: bool = False) -> Iterator[str]:
    """Create ``<test db>_bench_<suffix>``, set Django up on it, migrate; drop it at the end."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import psycopg

    base = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/cps_cms"
    head, _, dbname = base.rpartition("/")
    name = f"{dbname}_bench_{suffix}"
    os.environ["DATABASE_URL"] = f"{head}/{name}"
    with psycopg.connect(f"{head}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0)
    try:
        yield name
    finally:
        connections.close_all()
        if not keep:
            with psycopg.connect(f"{head}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
