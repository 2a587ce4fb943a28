"""Audit append cost: events appended per second through ``audit_event_create`` (lock, chain,
hash, insert), against a plain INSERT of the same row in its own transaction, side by side.

    python bench/audit.py [--events N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support.database import bench_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with bench_database("audit"):
        from django.db import connection, transaction
        from django.utils import timezone

        from core.actors import Actor
        from core.audit import audit_chain_verify, audit_event_create

        actor = Actor(kind="user", id="1", label="bench")
        details = {"reason": "bench", "serial": "0123456789abcdef" * 2}

        def chained(n: int) -> float:
            start = time.perf_counter()
            for i in range(n):
                with transaction.atomic():
                    audit_event_create(
                        actor=actor,
                        action="bench.append",
                        object_type="card",
                        object_id=str(i),
                        details=details,
                    )
            return n / (time.perf_counter() - start)

        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE bench_plain (seq bigserial PRIMARY KEY, occurred_at timestamptz, "
                "actor_kind text, actor_id text, actor_label text, action text, object_type text, "
                "object_id text, details jsonb, prev_hash text, hash text)"
            )

        def plain(n: int) -> float:
            start = time.perf_counter()
            for i in range(n):
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(
                        "INSERT INTO bench_plain (occurred_at, actor_kind, actor_id, actor_label, "
                        "action, object_type, object_id, details, prev_hash, hash) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)",
                        [
                            timezone.now(),
                            "user",
                            "1",
                            "bench",
                            "bench.append",
                            "card",
                            str(i),
                            '{"reason": "bench"}',
                            "0" * 64,
                            "1" * 64,
                        ],
                    )
            return n / (time.perf_counter() - start)

        chained(200), plain(200)  # warm up connections and caches
        rows = []
        for _ in range(args.rounds):  # alternate, so machine noise hits both alike
            rows.append((chained(args.events), plain(args.events)))
        best_chained = max(r[0] for r in rows)
        best_plain = max(r[1] for r in rows)
        print(f"audit append (lock, previous hash, SHA-256, insert): {best_chained:,.0f} events/s")
        print(f"plain INSERT of the same row, a transaction each:  {best_plain:,.0f} rows/s")
        print(f"ratio chained / plain: {best_chained / best_plain:.2f}")
        start = time.perf_counter()
        report = audit_chain_verify()
        elapsed = time.perf_counter() - start
        print(
            f"audit_verify: {report.checked:,} events in {elapsed:.2f} s "
            f"({report.checked / elapsed:,.0f}/s), ok={report.ok}"
        )


if __name__ == "__main__":
    main()
