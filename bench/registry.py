"""Registry benchmark: holder import rate and card search latency on PostgreSQL.

    python bench/registry.py [--quick] [--keep]

Runs on its own database (the test DATABASE_URL with ``_bench_registry`` appended to the name),
created and migrated here and dropped at the end unless ``--keep``. Prints:
- holder import (CSV through ``cms.services.holder_import``): rows/s for 10k and 100k rows, first
  import and an unchanged re-import;
- card search with 1M holders and 1M cards (bulk-loaded with COPY): p50/p99 latency of the API's
  filters (name substring, name prefix, national id, card number, DESFire UID) and their plans.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

SYLLABLES = [
    "ma",
    "ri",
    "du",
    "lo",
    "ber",
    "nan",
    "ge",
    "pe",
    "tit",
    "ro",
    "chi",
    "fa",
    "mon",
    "vel",
    "bou",
    "lan",
    "gar",
    "sau",
    "der",
    "can",
    "mar",
    "tin",
]
FIRST = ["Claire", "Paul", "Anne", "Louis", "Marie", "Jean", "Lea", "Hugo", "Emma", "Nina"]
PROFESSIONS = ["10", "21", "40", "50", "60", "70", "91"]


def rpps(n: int) -> str:
    from cms.identifiers import luhn_digit

    body = f"{n:010d}"
    return f"8{body}{luhn_digit(body)}"


def chip_serial(n: int) -> str:
    """A CPS chip serial (EF.SN.ICC), which is also the card's number."""
    from cards.products import card_serial, registry_card_number

    return registry_card_number(card_serial(f"{n:010d}"))


def name(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).upper()


def setup_database() -> str:
    from config.env import env_str

    base = env_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/cps_cms")
    head, _, dbname = base.rpartition("/")
    bench_url = f"{head}/{dbname}_bench_registry"
    os.environ["DATABASE_URL"] = bench_url
    import psycopg

    with psycopg.connect(f"{head}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}_bench_registry"')
        conn.execute(f'CREATE DATABASE "{dbname}_bench_registry"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return f"{dbname}_bench_registry"


def drop_database(dbname: str) -> None:
    from django.db import connections

    connections.close_all()
    import psycopg

    head = os.environ["DATABASE_URL"].rpartition("/")[0]
    with psycopg.connect(f"{head}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}"')


def bench_import(sizes: list[int]) -> None:
    from django.db import connection

    from cms.callers import Caller
    from cms.services.holder_import import holder_import

    caller = Caller.for_system("bench")
    rng = random.Random(7)
    print("== holder import (CSV -> validate -> upsert, one transaction, one audit event)")
    for size in sizes:
        with connection.cursor() as cur:
            cur.execute("TRUNCATE cms_holder CASCADE")
        lines = ["national_id;last_name;first_name;profession;postal_code;city"]
        for i in range(size):
            lines.append(
                f"{rpps(10_000_000 + i)};{name(rng)};{rng.choice(FIRST)};"
                f"{rng.choice(PROFESSIONS)};{rng.randint(1, 95):02d}{rng.randint(0, 999):03d};X"
            )
        content = ("\n".join(lines) + "\n").encode()
        for label in ("first import", "re-import (unchanged)"):
            started = time.perf_counter()
            report = holder_import(content=content, caller=caller)
            elapsed = time.perf_counter() - started
            print(
                f"{size:>8} rows, {label:<22}: {elapsed:7.2f} s  {size / elapsed:9.0f} rows/s  "
                f"(created {report.created}, unchanged {report.unchanged}, "
                f"rejected {len(report.rejected)})"
            )


def bulk_load(n: int) -> list[tuple[str, str, str, str]]:
    """COPY n holders and n active cards; returns a sample of (name, national id, number, uid)."""
    from django.db import connection
    from django.utils import timezone

    from cms.models import Product

    product = Product.objects.create(
        name="CPS4", version="bench", status="issued", validity_years=6, definition={},
        definition_sha256="0" * 64,
    )  # fmt: skip
    rng = random.Random(11)
    now = timezone.now()
    sample: list[tuple[str, str, str, str]] = []
    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE cms_holder CASCADE")
        raw = cur.connection
        holder_ids = []
        with raw.cursor().copy(
            "COPY cms_holder (id, national_id, last_name, first_name, profession, card_type, "
            "status, address_line1, address_line2, postal_code, city, departement, created_at, "
            "updated_at) FROM STDIN"
        ) as copy:
            for i in range(n):
                hid = uuid.UUID(int=rng.getrandbits(128), version=4)
                holder_ids.append(hid)
                dept = f"{rng.randint(1, 95):02d}"
                last = name(rng)
                copy.write_row((hid, rpps(20_000_000 + i), last, rng.choice(FIRST),
                                rng.choice(PROFESSIONS), "CPS", "active", "", "", f"{dept}000",
                                "", dept, now, now))  # fmt: skip
                if i % (n // 200 or 1) == 0:
                    sample.append((last, rpps(20_000_000 + i), chip_serial(i + 1),
                                   f"04{i:012X}"))  # fmt: skip
        with raw.cursor().copy(
            "COPY cms_card (id, card_number, chip_serial, desfire_uid, transport_key_version, "
            "product_id, holder_id, card_type, status, revoke_reason, migration_overlap, "
            "created_at) FROM STDIN"
        ) as copy:
            for i, hid in enumerate(holder_ids):
                number = chip_serial(i + 1)
                copy.write_row((uuid.uuid4(), number, number,
                                f"04{i:012X}", 0, product.pk, hid, "CPS", "ACTIVE", "", False,
                                now))  # fmt: skip
        cur.execute("ANALYZE cms_holder")
        cur.execute("ANALYZE cms_card")
    print(f"COPY {n} holders + {n} cards: {time.perf_counter() - started:.1f} s")
    return sample


def bench_search(sample: list[tuple[str, str, str, str]], repeat: int) -> None:
    from cms.filtersets import CardFilterSet
    from cms.selectors import card_list

    rng = random.Random(3)
    queries = {
        "name substring (trigram)": lambda s: {"name": s[0][1:5]},
        "name prefix (2 chars)": lambda s: {"name": s[0][:2]},
        "national_id": lambda s: {"national_id": s[1]},
        "card_number": lambda s: {"card_number": s[2]},
        "desfire_uid": lambda s: {"desfire_uid": s[3]},
    }
    print("== card search (API filters; first page of 50, ordered as the API orders it)")
    for label, make in queries.items():
        timings = []
        plan_qs = None
        for _ in range(repeat):
            filters = make(rng.choice(sample))
            qs = CardFilterSet(filters, queryset=card_list()).qs[:50]
            started = time.perf_counter()
            rows = list(qs)
            timings.append((time.perf_counter() - started) * 1000)
            plan_qs = qs
            assert rows or label.startswith("name"), f"{label}: nothing found for {filters}"
        timings.sort()
        p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
        print(f"{label:<26} p50 {statistics.median(timings):8.2f} ms   p99 {p99:8.2f} ms")
        assert plan_qs is not None
        plan = plan_qs.explain()
        indexes = sorted(
            set(re.findall(r"Index (?:Only )?Scan (?:Backward )?(?:using|on) (\S+)", plan))
        )
        scans = sorted(set(re.findall(r"Seq Scan on (\S+)", plan)))
        print("    plan: " + "\n          ".join(plan.splitlines()))
        print(
            f"    indexes used: {', '.join(indexes) or 'none'}; sequential scans: "
            f"{', '.join(scans) or 'none'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    dbname = setup_database()
    try:
        bench_import([1_000, 5_000] if args.quick else [10_000, 100_000])
        sample = bulk_load(20_000 if args.quick else 1_000_000)
        bench_search(sample, repeat=50 if args.quick else 300)
    finally:
        if not args.keep:
            drop_database(dbname)


if __name__ == "__main__":
    main()
