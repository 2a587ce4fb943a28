"""Contactless relying parties (issue 16, DESIGN.md §10): the status service over HTTP against
the pre-signed OCSP path in the same run, the signed deny list's publication, and the client's
check.

    python bench/contactless.py [--cards 1000000] [--denied 100000] [--seconds 10] [--clients 4]
                                [--rounds 5] [--keep]

A database of its own (PostgreSQL), filled with SQL: ``--cards`` cards (each with a holder),
``--denied`` of them suspended and on the deny list. Prints:
- status lookups by UID through gunicorn: p50, p99, requests/s; the same client asking for
  pre-signed OCSP answers (GET) from the same server: requests/s, and the ratio (target >= 1);
- the full signed list of ``--denied`` entries: build + sign time and size;
- a version with 1,000 changes: the delta document alone (body + signature; target < 0.1 s) and
  the whole publication (full list + delta);
- the client: verifying and loading the full list (openssl + JSON), then UID checks per second.
Benchmarks print; tests never assert on time.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("PKI_BENCH_PASSPHRASE", secrets.token_hex(16))

from bench._support.database import bench_database  # noqa: E402
from cardsim.rig import free_port, port_listening, wait_until  # noqa: E402


def _fill(table: str, count: int, values: dict[str, str]) -> None:
    """INSERT ``count`` rows built by SQL over generate_series(1, count) AS i; columns not named
    get a neutral value for their type (NOT NULL columns have no database default here)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = %s ORDER BY ordinal_position",
            [table],
        )
        columns = cur.fetchall()
        neutral = {
            "boolean": "false",
            "integer": "0",
            "smallint": "0",
            "bigint": "0",
            "timestamp with time zone": "now()",
            "jsonb": "'{}'::jsonb",
        }
        names, exprs = [], []
        for name, kind in columns:
            if name == "id" and name not in values and kind in ("integer", "bigint"):
                continue
            names.append(f'"{name}"')
            exprs.append(values.get(name, neutral.get(kind, "''")))
        cur.execute(
            f'INSERT INTO "{table}" ({", ".join(names)}) '
            f"SELECT {', '.join(exprs)} FROM generate_series(1, {count}) AS i"
        )


def _uid(i: str) -> str:
    return f"'04' || upper(lpad(to_hex({i}), 12, '0'))"


def _get_client(port: int, paths: list[str], seconds: float) -> list[float]:
    """Sequential GETs, a new connection each (HTTP/1.0), on bare sockets; the latency of each."""
    wire = [f"GET {p} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode() for p in paths]
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(wire[n % len(wire)])
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        reply = b"".join(chunks)
        if not reply.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200")):
            raise RuntimeError(f"answer {reply[:60]!r}")
        times.append(time.perf_counter() - start)
        n += 1
    return times


def _load(port: int, paths: list[str], seconds: float, clients: int) -> tuple[float, list[float]]:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(clients) as pool:
        start = time.perf_counter()
        futures = [pool.submit(_get_client, port, paths, seconds) for _ in range(clients)]
        latencies = [t for f in futures for t in f.result()]
        return len(latencies) / (time.perf_counter() - start), latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=1_000_000)
    parser.add_argument("--denied", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5, help="status and OCSP loads alternated")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ocsp-certificates", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark's database")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="contactless-bench-"))
    with bench_database("contactless", keep=args.keep) as dbname:
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection, transaction

        settings.PKI_KEY_BACKENDS = {
            "software": {
                "BACKEND": "pki.keys.software.SoftwareKeyBackend",
                "OPTIONS": {
                    "location": str(tmp / "keys"),
                    "passphrase_env": "PKI_BENCH_PASSPHRASE",
                },
            }
        }
        call_command(
            "pki_init",
            config=str(ROOT / "tests/pki/fixtures/test_hierarchy.toml"),
            backend="software",
            stdout=open(os.devnull, "w"),  # noqa: SIM115
        )
        from cms.models import Product

        product = Product.objects.create(
            name="CPS4", version="1", status="issued", validity_years=6,
            definition={"name": "CPS4"}, definition_sha256="0" * 64,
        )  # fmt: skip
        start = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cur:
            # the rows are consistent by construction: no foreign-key trigger per row
            cur.execute("SET LOCAL session_replication_role = replica")
            _fill("cms_holder", args.cards, {
                "id": "md5('h' || i)::uuid",
                "national_id": "'8' || lpad(i::text, 11, '0')",
                "last_name": "'BENCH'", "first_name": "'Contactless'", "profession": "'10'",
                "card_type": "'CPS'", "status": "'active'", "country": "'FR'",
            })  # fmt: skip
            _fill("cms_card", args.cards, {
                "id": "md5('c' || i)::uuid",
                "card_number": "'8025000001' || lpad(i::text, 10, '0')",
                "chip_serial": "'8025000001' || lpad(i::text, 10, '0')",
                "desfire_uid": _uid("i"),
                "product_id": str(product.pk), "batch_id": "NULL", "pool_id": "NULL",
                "holder_id": "md5('h' || i)::uuid", "card_type": "'CPS'",
                "status": f"CASE WHEN i <= {args.denied} THEN 'SUSPENDED' ELSE 'ACTIVE' END",
                "issued_at": "NULL", "activated_at": "NULL", "expires_at": "NULL",
                "status_changed_at": "NULL",
            })  # fmt: skip
            _fill("cms_denylistentry", args.denied, {
                "card_id": "md5('c' || i)::uuid",
                "desfire_uid": _uid("i"),
                "card_number": "'8025000001' || lpad(i::text, 10, '0')",
                "reason": "'suspended'",
            })  # fmt: skip
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE")  # statistics and visibility map, as autovacuum would
        fill = time.perf_counter() - start
        print(
            f"== contactless: {args.cards:,} cards, {args.denied:,} denied (filled in {fill:.1f} s)"
        )

        # --- publication: the full signed list, then a version with 1,000 changes
        from cms.contactless import document
        from cms.contactless.services import deny_list_publish
        from cms.models import DenyListChangeRow, DenyListPublication
        from core.actors import Actor
        from pki import services as pki_services

        actor = Actor.system("bench")
        pki_services.status_signer_ensure(actor=actor)
        start = time.perf_counter()
        deny_list_publish(actor=actor, force=True)
        full_time = time.perf_counter() - start
        full = DenyListPublication.objects.get(version=1, kind="full")
        print(
            f"full list        {args.denied:,} entries: {full_time:.2f} s, {len(full.der):,} bytes"
        )

        changed = 1000
        with transaction.atomic():
            _fill("cms_denylistchangerow", changed, {
                "id": f"i + {10**9}",
                "card_id": f"md5('c' || (i + {args.denied}))::uuid", "change": "'add'",
                "desfire_uid": _uid(f"(i + {args.denied})"),
                "card_number": f"'8025000001' || lpad((i + {args.denied})::text, 10, '0')",
                "reason": "'suspended'", "version": "NULL",
            })  # fmt: skip
        import datetime as dt

        from django.utils import timezone

        start = time.perf_counter()
        rows = list(
            DenyListChangeRow.objects.filter(version__isnull=True)
            .order_by("id")
            .values_list("desfire_uid", "card_number", "reason")
        )
        now = timezone.now()
        body = document.delta_body(
            version=2, issued_at=now, next_update=now + dt.timedelta(hours=2),
            added=[document.Entry(*row) for row in rows],
            removed=[],
        )  # fmt: skip
        built = time.perf_counter() - start
        pki_services.status_document_sign(content=body, actor=actor)
        delta_time = time.perf_counter() - start
        start = time.perf_counter()
        deny_list_publish(actor=actor)
        version_time = time.perf_counter() - start
        print(
            f"delta            {changed:,} changes: {delta_time * 1000:.1f} ms (target < 100 ms;"
            f" rows + body {built * 1000:.1f} ms, signature {(delta_time - built) * 1000:.1f} ms)"
        )
        print(f"publication      full + delta of that version: {version_time:.2f} s")

        # --- the client: verify and load the full list, then check UIDs
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        from cpsclient import denylist
        from pki.models import CertificateAuthority

        root = CertificateAuthority.objects.get(short_name="ACR-FO-TEST")
        (tmp / "root.pem").write_bytes(
            x509.load_der_x509_certificate(bytes(root.certificate_der)).public_bytes(Encoding.PEM)
        )
        newest = DenyListPublication.objects.get(version=2, kind="full")
        start = time.perf_counter()
        local = denylist.apply(None, denylist.verify(bytes(newest.der), ca_file=tmp / "root.pem"))
        load_time = time.perf_counter() - start
        probes = [f"04{n:012X}" for n in range(1, 200_001, 2)]
        local.reason_for(uid=probes[0])
        start = time.perf_counter()
        hits = sum(local.reason_for(uid=u) is not None for u in probes)
        check_rate = len(probes) / (time.perf_counter() - start)
        print(
            f"client           verify + load {len(local.entries):,} entries: {load_time:.2f} s; "
            f"{check_rate:,.0f} UID checks/s ({hits:,} of {len(probes):,} denied)"
        )

        # --- HTTP: status lookups vs pre-signed OCSP answers, same gunicorn, same client
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509 import ocsp

        from pki.domain.names import Holder

        ca = CertificateAuthority.objects.get(short_name="ACI-FO-PP-TEST")
        issuer = x509.load_der_x509_certificate(bytes(ca.certificate_der))
        public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
        ocsp_paths = []
        for n in range(args.ocsp_certificates):
            holder = Holder(
                national_id=f"81{n:010d}", surname="BENCH", given_name="OCSP", title="Médecin",
                card_serial=f"26{n:08d}", profession_code=10, email=f"b{n}@example.org",
            )  # fmt: skip
            cert = pki_services.certificate_issue(
                authority=ca.short_name, profile="cps_auth", actor=actor,
                public_key=public, holder=holder,
            )  # fmt: skip
            der = x509.load_der_x509_certificate(bytes(cert.der))
            request = ocsp.OCSPRequestBuilder().add_certificate(der, issuer, hashes.SHA1()).build()
            encoded = base64.b64encode(request.public_bytes(Encoding.DER)).decode()
            ocsp_paths.append("/ocsp/" + encoded.replace("/", "%2F").replace("+", "%2B"))
        status_paths = [
            f"/contactless/status?uid=04{n:012X}"
            for n in range(1, args.cards + 1, max(1, args.cards // 5000))
        ]
        port = free_port()
        env = dict(
            os.environ,
            DATABASE_URL=os.environ["DATABASE_URL"],
            CONTACTLESS_STATUS_RATE="100000000/s",
            PKI_OCSP_LIVE_SIGNING="0",
        )
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi",
             "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
             "--worker-class", "gthread", "--threads", "4", "--log-level", "warning"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(tmp / "gunicorn.log", "wb"),  # noqa: SIM115
        )  # fmt: skip
        try:
            wait_until(lambda: port_listening(port), timeout=60, what="gunicorn", interval=0.2)
            for _ in range(60):  # the port listens before the workers have booted
                try:
                    _get_client(port, status_paths[:5], 0.1)
                    break
                except (TimeoutError, ConnectionError):
                    time.sleep(1)
            _get_client(port, status_paths[:20] + ocsp_paths[:20], 1.0)  # warm both paths
            # alternated in rounds: a machine whose load drifts (shared cores) weighs on both
            status_lat, ocsp_lat, status_time, ocsp_time = [], [], 0.0, 0.0
            share = args.seconds / args.rounds
            for _ in range(args.rounds):
                rate, latencies = _load(port, status_paths, share, args.clients)
                status_lat += latencies
                status_time += len(latencies) / rate
                rate, latencies = _load(port, ocsp_paths, share, args.clients)
                ocsp_lat += latencies
                ocsp_time += len(latencies) / rate
            status_rate, ocsp_rate = len(status_lat) / status_time, len(ocsp_lat) / ocsp_time
        finally:
            server.terminate()
            server.wait(timeout=30)
        shape = f"{args.clients} clients, {args.workers} gunicorn workers x 4 threads, HTTP/1.0"
        print(f"load             {shape}, {args.seconds:.0f} s each in {args.rounds} rounds")
        print(
            f"status           p50 {_pct(status_lat, 0.5):.2f} ms, "
            f"p99 {_pct(status_lat, 0.99):.2f} ms, "
            f"{status_rate:,.0f} req/s"
        )
        print(
            f"OCSP pre-signed  p50 {_pct(ocsp_lat, 0.5):.2f} ms, "
            f"p99 {_pct(ocsp_lat, 0.99):.2f} ms, "
            f"{ocsp_rate:,.0f} req/s"
        )
        print(f"ratio            status / OCSP = {status_rate / ocsp_rate:.2f} (target >= 1)")
        print(
            f"(database {dbname}, mean status latency {statistics.mean(status_lat) * 1000:.2f} ms)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
