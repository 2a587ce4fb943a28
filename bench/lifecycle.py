"""After-issuance benchmark (issue 15): the daily expiry sweep at scale and bulk revocation.

    python bench/lifecycle.py [--quick] [--cards 1000000] [--bulk 10000] [--keep]

Runs on its own database (``<test db>_bench_lifecycle``, dropped at the end unless ``--keep``)
with the shipped hierarchy on software keys in a temporary directory. Prints:
- expiry sweep with N cards in service (COPY: holders, cards ending over the next six years, one
  valid certificate each ending over the next three years): the plans of the three queries that
  find what is due (index scans expected), their times, and one steady-state daily sweep (windows
  of one day: what one day brings) with its counts;
- bulk revocation of B cards (two real certificate rows each) end to end through
  ``cms.services.bulk_revocation`` (card status, certificates revoked with their CRL entries and
  pre-signed OCSP answers, deny list, audit), as certificates per second and as a ratio to the raw
  OCSP signing rate of the same responder key measured in the same run, just before and just after
  (their mean; target >= 0.5).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import os
import re
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("PKI_BENCH_PASSPHRASE", secrets.token_hex(16))

from bench._support.database import bench_database  # noqa: E402

ISSUING = "ACI-FO-PP"


def _number(n: int) -> str:
    from cards.products import card_serial, registry_card_number

    return registry_card_number(card_serial(f"{n:010d}"))


def _rpps(n: int) -> str:
    from cms.identifiers import luhn_digit

    body = f"{n:010d}"
    return f"8{body}{luhn_digit(body)}"


def load(product_id: int, issuer_id: int, first: int, n: int, cert_slots: tuple[str, ...]) -> None:
    """COPY n holders, n ACTIVE cards and their certificates (one per slot) with links."""
    from django.db import connection
    from django.utils import timezone

    now = timezone.now()
    span_card = 6 * 365 * 86400
    span_cert = 3 * 365 * 86400
    holders = [uuid.uuid4() for _ in range(n)]
    cards = [uuid.uuid4() for _ in range(n)]
    with connection.cursor() as cur:
        raw = cur.connection
        # The rows are consistent by construction: skip the per-row foreign-key triggers while
        # loading (the benchmark's own database; unique indexes and checks still apply).
        cur.execute("SET session_replication_role = replica")
        with raw.cursor().copy(
            "COPY cms_holder (id, national_id, last_name, first_name, profession, card_type, "
            "status, address_line1, address_line2, postal_code, city, country, departement, "
            "created_at, updated_at) FROM STDIN"
        ) as copy:
            for i, hid in enumerate(holders):
                copy.write_row((hid, _rpps(first + i), "BENCH", "Claire", "10", "CPS", "active",
                                "", "", "75000", "", "FR", "75", now, now))  # fmt: skip
        with raw.cursor().copy(
            "COPY cms_card (id, card_number, chip_serial, desfire_uid, transport_key_version, "
            "product_id, holder_id, card_type, status, revoke_reason, migration_overlap, "
            "issued_at, activated_at, expires_at, created_at) FROM STDIN"
        ) as copy:
            for i, (cid, hid) in enumerate(zip(cards, holders, strict=True)):
                number = _number(first + i)
                ends = now + dt.timedelta(seconds=(i * 7919 % n) / n * span_card + 3600)
                copy.write_row((cid, number, number, f"{first + i:014X}", 0, product_id, hid,
                                "CPS", "ACTIVE", "", False, now, now, ends, now))  # fmt: skip
        cert_id = 100_000_000 + first * len(cert_slots)
        links: list[tuple[uuid.UUID, str, int]] = []
        with raw.cursor().copy(
            "COPY pki_certificate (id, issuer_id, serial, profile, status, subject, national_id, "
            "holder, not_before, not_after, der, fingerprint_sha256, revocation_reason, "
            "status_changed_at, created_at) FROM STDIN"
        ) as copy:
            for i, cid in enumerate(cards):
                ends = now + dt.timedelta(seconds=(i * 104729 % n) / n * span_cert + 3600)
                for slot in cert_slots:
                    cert_id += 1
                    serial = (first + i) * 16 + len(links) % 2 + 1
                    copy.write_row((cert_id, issuer_id, serial, f"cps_{slot}", "valid", "CN=BENCH",
                                    "", "{}", now, ends, b"bench",
                                    hashlib.sha256(str(cert_id).encode()).hexdigest(), "",
                                    now, now))  # fmt: skip
                    links.append((cid, slot, cert_id))
        with raw.cursor().copy(
            "COPY cms_cardcertificate (card_id, slot, certificate_id) FROM STDIN"
        ) as copy:
            for row in links:
                copy.write_row(row)
        cur.execute("RESET session_replication_role")
        for table in ("cms_holder", "cms_card", "pki_certificate", "cms_cardcertificate"):
            cur.execute(f"ANALYZE {table}")


def _plan(label: str, qs: object) -> None:
    plan = qs.explain()  # type: ignore[attr-defined]
    indexes = sorted(
        set(re.findall(r"Index (?:Only )?Scan (?:Backward )?(?:using|on) (\S+)", plan))
    )
    scans = sorted(set(re.findall(r"Seq Scan on (\S+)", plan)))
    print(f"  {label}\n    " + "\n    ".join(plan.splitlines()))
    print(f"    indexes: {', '.join(indexes) or 'none'}; seq scans: {', '.join(scans) or 'none'}")


def bench_sweep(n: int, issuer_id: int) -> None:
    from django.conf import settings
    from django.utils import timezone

    from cms.models import Product
    from cms.services import expiry

    product = Product.objects.create(
        name="CPS4", version="bench", status="issued", validity_years=6, definition={},
        definition_sha256="0" * 64,
    )  # fmt: skip
    started = time.perf_counter()
    load(product.pk, issuer_id, 1, n, ("auth",))
    print(f"== expiry sweep, {n} cards in service (COPY {time.perf_counter() - started:.1f} s)")
    now = timezone.now()
    queries = {
        "certificates due (90 days)": expiry.certificates_due(product, now),
        "cards due (120 days)": expiry.cards_due(product, now),
        "cards past their end": expiry.cards_past_end(now),
    }
    for label, qs in queries.items():
        _plan(label, qs[:500])
        started = time.perf_counter()
        count = qs.count()
        print(f"    {count} found, counted in {(time.perf_counter() - started) * 1000:.0f} ms")
    settings.RENEWAL_CERTIFICATE_WINDOW_DAYS = 1
    settings.RENEWAL_CARD_WINDOW_DAYS = 1
    print("  the same queries with windows of one day (the steady-state daily sweep)")
    for label, qs in {
        "certificates due (1 day)": expiry.certificates_due(product, now),
        "cards due (1 day)": expiry.cards_due(product, now),
    }.items():
        _plan(label, qs[:500])
    started = time.perf_counter()
    report = expiry.expiry_sweep()
    elapsed = time.perf_counter() - started
    print(f"  one daily sweep (windows of one day): {elapsed:.2f} s -> {report}")
    started = time.perf_counter()
    again = expiry.expiry_sweep()
    print(
        f"  the same sweep again (nothing to do): {time.perf_counter() - started:.2f} s -> {again}"
    )


def bench_bulk(b: int, issuer_id: int) -> None:
    from django.db import transaction
    from django.utils import timezone

    from cms.models import BulkRevocation, Product
    from cms.services.bulk_revocation import bulk_revocation_run
    from pki import authorities
    from pki.services.ocsp import ocsp_answer_for

    product = Product.objects.create(
        name="CPS4", version="bench-bulk", status="issued", validity_years=6, definition={},
        definition_sha256="1" * 64,
    )  # fmt: skip
    load(product.pk, issuer_id, 5_000_000, b, ("auth", "sign"))
    print(f"== bulk revocation of {b} cards ({2 * b} certificates), same responder key")
    raw_n = min(2 * b, 2000)

    def raw_signing() -> float:
        now = timezone.now()
        with transaction.atomic():
            ca = authorities.authority_lock_shared(pk=issuer_id)
            started = time.perf_counter()
            for serial in range(raw_n):
                ocsp_answer_for(
                    ca,
                    serial=serial + 1,
                    status="revoked",
                    revoked_at=now,
                    revocation_reason="key_compromise",
                    hold_since=None,
                    now=now,
                )
            return raw_n / (time.perf_counter() - started)

    # Measured before and after the run (on a shared machine the load drifts): the mean is the
    # reference.
    before = raw_signing()
    print(f"  raw OCSP signing  {before:8.1f} answers/s ({raw_n} answers, before)")
    bulk = BulkRevocation.objects.create(
        selection={"product_id": product.pk}, reason="compromised", act_id=0, total=b
    )
    started = time.perf_counter()
    bulk = bulk_revocation_run(bulk_id=bulk.pk)
    elapsed = time.perf_counter() - started
    rate = 2 * bulk.revoked / elapsed
    print(
        f"  end to end        {rate:8.1f} certificates/s ({bulk.revoked} cards in {elapsed:.1f} s)"
    )
    after = raw_signing()
    raw_rate = (before + after) / 2
    print(f"  raw OCSP signing  {after:8.1f} answers/s ({raw_n} answers, after)")
    print(f"  ratio end-to-end / raw signing (mean): {rate / raw_rate:.2f} (target >= 0.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 cards, bulk of 1,000")
    parser.add_argument("--cards", type=int, default=None)
    parser.add_argument("--bulk", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    cards = args.cards or (20_000 if args.quick else 1_000_000)
    bulk = args.bulk or (1_000 if args.quick else 10_000)
    tmp = Path(tempfile.mkdtemp(prefix="lifecycle-bench-"))
    with bench_database("lifecycle", keep=args.keep):
        import logging

        from django.conf import settings
        from django.core.management import call_command

        logging.getLogger("celery").setLevel(logging.WARNING)
        settings.PKI_KEY_BACKENDS = {
            "software": {
                "BACKEND": "pki.keys.software.SoftwareKeyBackend",
                "OPTIONS": {
                    "location": str(tmp / "keys"),
                    "passphrase_env": "PKI_BENCH_PASSPHRASE",
                },
            }
        }
        call_command("pki_init", config=str(ROOT / "pki/hierarchy.toml"), backend="software",
                     stdout=io.StringIO())  # fmt: skip
        from pki.models import CertificateAuthority

        issuing = CertificateAuthority.objects.filter(short_name__startswith=ISSUING).order_by("pk")
        issuer_id = issuing.first().pk  # type: ignore[union-attr]
        bench_sweep(cards, issuer_id)
        bench_bulk(bulk, issuer_id)


if __name__ == "__main__":
    main()
