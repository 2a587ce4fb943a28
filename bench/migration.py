"""CPS3 → CPS4 migration at national scale: the inventory import against a plain COPY.

Figures, on PostgreSQL, in one run:
  - a plain ``COPY`` of the export into a table of the same shape (all text columns): the
    baseline, best of ``--rounds``;
  - ``import_cps3`` of the same file (COPY into staging, then the set-based reconciliation:
    validation, upsert by chip serial, certificates, exceptions report) — the first import, then
    the same file again (nothing changes), as ratios to the baseline (target ≤ 3 ×, DESIGN.md §10);
  - the wave figures where waves exist (planning a wave of 100,000 holders, its requests per
    second, the dashboard's queries p99).

    python bench/migration.py [--records 1560000] [--rounds 2] [--seed 1] [--steps]
                              [--data DIR] [--database NAME] [--no-waves] [--keep]

``--data DIR`` keeps the generated export and registry there and reuses them on the next run with
the same ``--records`` and ``--seed`` (generating 1.56 million records takes minutes).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support.database import bench_database


def _write_export(path: Path, count: int, seed: int) -> dict[str, int]:
    from cps3.generator import Export, export_rows

    report = Export()
    with path.open("w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows(export_rows(count, seed=seed, report=report))
    return report.anomalies


def _write_registry(path: Path, count: int, seed: int) -> None:
    """The holders the export names, as the rows of cms_holder (COPY text format)."""
    import uuid

    from cms.identifiers import departement_of
    from cps3.generator import holder_rows

    rows = holder_rows(count, seed=seed)
    next(rows)
    with path.open("w", encoding="utf-8", newline="") as out:
        for nid, last, first, profession, postal in rows:
            fields = (str(uuid.uuid4()), nid, last, first, profession, "CPS", "active", "", "",
                      postal, "", "FR", departement_of(postal), "now", "now")  # fmt: skip
            out.write("\t".join(fields) + "\n")


def _load_registry(path: Path) -> None:
    """The registry, straight into cms_holder through COPY (the registry is there before the
    migration; how it got there is not what is measured)."""
    from django.db import connection

    pg = connection.connection
    assert pg is not None
    sql = (
        "COPY cms_holder (id, national_id, last_name, first_name, profession, card_type, status,"
        " address_line1, address_line2, postal_code, city, country, departement, created_at,"
        " updated_at) FROM STDIN"
    )
    with path.open("rb") as stream, pg.cursor() as cur, cur.copy(sql) as copy:
        while chunk := stream.read(1 << 20):
            copy.write(chunk)
    with pg.cursor() as cur:
        cur.execute("ANALYZE cms_holder")
    pg.commit()


def _plain_copy(path: Path) -> float:

    from django.db import connection

    from cps3.inventory import COLUMNS

    pg = connection.connection
    assert pg is not None
    with pg.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_plain")
        cur.execute(f"CREATE TABLE bench_plain ({', '.join(c + ' text' for c in COLUMNS)})")
    pg.commit()
    start = time.perf_counter()
    with path.open("rb") as stream, pg.cursor() as cur:
        stream.readline()
        with cur.copy("COPY bench_plain FROM STDIN WITH (FORMAT csv)") as copy:
            while chunk := stream.read(1 << 20):
                copy.write(chunk)
    pg.commit()
    elapsed = time.perf_counter() - start
    with pg.cursor() as cur:
        cur.execute("DROP TABLE bench_plain")
    pg.commit()
    return elapsed


def _import(path: Path) -> tuple[float, object]:
    from core.actors import Actor
    from cps3.inventory import cps3_import

    start = time.perf_counter()
    with path.open("rb") as stream:
        result = cps3_import(
            stream=stream, filename=path.name, size=path.stat().st_size,
            actor=Actor.system("bench"),
        )  # fmt: skip
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_560_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--wave", type=int, default=100_000, help="holders in the timed wave")
    parser.add_argument("--steps", action="store_true", help="print each import step's duration")
    parser.add_argument(
        "--data", type=Path, help="keep the generated export and registry here, reuse them"
    )
    parser.add_argument(
        "--database", default="migration", help="suffix of the benchmark's own database"
    )
    parser.add_argument("--no-waves", action="store_true", help="time the import only")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if args.steps:
        import logging

        logging.basicConfig(format="    %(message)s")
        logging.getLogger("cps3.inventory").setLevel(logging.DEBUG)
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
    data = args.data or Path(tempfile.mkdtemp(prefix="migration-bench-"))
    data.mkdir(parents=True, exist_ok=True)
    with bench_database(args.database, keep=args.keep):
        path = data / f"cps3-export-{args.records}-{args.seed}.csv"
        registry = data / f"registry-{args.records}-{args.seed}.tsv"
        if not (path.exists() and registry.exists()):
            start = time.perf_counter()
            # Written aside, then renamed: an interrupted run leaves nothing to reuse.
            partial = path.with_suffix(".partial"), registry.with_suffix(".partial")
            anomalies = _write_export(partial[0], args.records, args.seed)
            _write_registry(partial[1], args.records, args.seed)
            partial[0].rename(path)
            partial[1].rename(registry)
            print(f"export generated in {time.perf_counter() - start:.1f} s; anomalies {anomalies}")
        print(f"export: {args.records:,} professionals, {path.stat().st_size / 1e6:,.0f} MB")
        start = time.perf_counter()
        _load_registry(registry)
        print(f"registry loaded in {time.perf_counter() - start:.1f} s")

        # Interleaved: plain COPY, then the import, each round; best of each.
        plain = min(_plain_copy(path) for _ in range(args.rounds))
        first, result = _import(path)
        again_times = []
        for _ in range(args.rounds):
            plain = min(plain, _plain_copy(path))
            again_times.append(_import(path)[0])
        again = min(again_times)
        print(f"plain COPY into a table of the same shape: {plain:.1f} s")
        print(
            f"import_cps3, first import: {first:.1f} s = {first / plain:.2f} x plain COPY "
            f"(target <= 3 x); {result}"
        )
        print(
            f"import_cps3, same file again (nothing changes): {again:.1f} s = "
            f"{again / plain:.2f} x plain COPY"
        )
        _explain_report()
        if not args.no_waves:
            _waves(args.records, args.wave)


def _explain_report() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT kind, count(*) FROM cps3_cps3exception GROUP BY kind ORDER BY kind")
        counts = ", ".join(f"{k} {n:,}" for k, n in cur.fetchall())
    print(f"exceptions report: {counts}")


def _waves(records: int, size: int) -> None:
    """Plan a wave of about ``size`` holders (a CPS3 expiry window), launch it under dual control,
    time the creation of its first day's requests and the dashboard's queries."""
    import datetime as dt
    import statistics

    from django.contrib.auth.models import Group, User

    from cms.models import Product, SitePool
    from core.dual_control import act_approve
    from cps3.dashboard import dashboard
    from cps3.waves import (
        WaveSpec,
        summaries_refresh,
        wave_advance,
        wave_create,
        wave_launch_request,
    )

    for name, status in (("CPS4", "issued"), ("CPS3", "legacy")):
        Product.objects.get_or_create(
            name=name, version="bench",
            defaults={"status": status, "validity_years": 6, "definition": {},
                      "definition_sha256": "0" * 64},
        )  # fmt: skip
    site = SitePool.objects.create(code="bench", name="Bench")
    group = Group.objects.get_or_create(name="issuance_operator")[0]
    leads = []
    for i in range(2):
        user = User.objects.create_user(f"lead{i}")
        user.groups.add(group)
        leads.append(user)
    today = dt.date(2026, 12, 1)
    window = max(1, round(3 * 365 * size / records))
    start = time.perf_counter()
    wave = wave_create(
        spec=WaveSpec(
            name="bench", pool_id=site.pk, daily_capacity=5_000, start_on=today,
            expires_to=today + dt.timedelta(days=window),
        ),
        user=leads[0],
    )  # fmt: skip
    planned = time.perf_counter() - start
    print(f"wave planning: {wave.planned:,} holders planned in {planned:.1f} s (target < 10 s)")
    act = wave_launch_request(wave_id=wave.pk, user=leads[0], reason="bench")
    import cps3.waves

    cps3.waves._enqueue = lambda wave_id: None  # the advance is timed below, not run at launch
    act_approve(act_id=act.pk, user=leads[1])
    start = time.perf_counter()
    created = wave_advance(wave_id=wave.pk, today=today)
    elapsed = time.perf_counter() - start
    print(
        f"wave requests: {created:,} created in {elapsed:.1f} s = {created / elapsed:,.0f} "
        "requests/s (each: the CPS3 in the registry, the request, its audit event)"
    )
    start = time.perf_counter()
    summaries_refresh(wave_ids=[wave.pk])
    print(f"summary refresh: {time.perf_counter() - start:.2f} s")
    times = []
    for i in range(200):
        start = time.perf_counter()
        dashboard(wave.pk if i % 2 else None)
        times.append(time.perf_counter() - start)
    times.sort()
    print(
        f"dashboard queries: p50 {statistics.median(times) * 1000:.1f} ms, "
        f"p99 {times[int(len(times) * 0.99) - 1] * 1000:.1f} ms (target p99 < 200 ms)"
    )


if __name__ == "__main__":
    main()
