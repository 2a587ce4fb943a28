"""PKI benchmarks (DESIGN.md §10), printed as figures and ratios measured in one run.

    python bench/pki.py [--quick] [--only issuance,crl,delta,ocsp] [--crl-sizes 100000,1000000]

Sets up Django with the test settings on PostgreSQL, creates its own database (dropped at the end)
and its own software-backend CA keys in a temporary directory. The CAs are those of the shipped
hierarchy (pki/hierarchy.toml: RSA-4096 issuing CA), the fair comparison for issuance; issuance is
also measured with an RSA-2048 CA (the test hierarchy, renamed), labelled as the worst case.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("PKI_BENCH_PASSPHRASE", secrets.token_hex(16))

from cardsim.rig import free_port, port_listening, wait_until  # noqa: E402


def _wait_port(port: int, timeout: float = 30.0) -> None:
    wait_until(
        lambda: port_listening(port), timeout=timeout, what=f"a server on port {port}", interval=0.1
    )


def _http_post(port: int, path: str, body: bytes) -> bytes:
    """The bytes of one HTTP/1.0 POST (no keep-alive: openssl's responder closes anyway)."""
    head = (
        f"POST {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/ocsp-request\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def _ocsp_client(port: int, path: str, requests: list[bytes], seconds: float) -> int:
    """Sequential POSTs, a new connection each, on bare sockets: the lightest client Python
    has, so that the client costs the same small CPU against every server."""
    wire = [_http_post(port, path, body) for body in requests]
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(wire[done % len(wire)])
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        reply = b"".join(chunks)
        if not reply.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200")) or b"\r\n\r\n" not in reply:
            raise RuntimeError(f"OCSP answer {reply[:40]!r}")
        done += 1
    return done


def trivial_app(environ: dict[str, object], start_response: Any) -> list[bytes]:
    """A WSGI app that answers a fixed body: the ceiling of client + gunicorn on this machine."""
    start_response("200 OK", [("Content-Type", "application/ocsp-response")])
    return [b"0" * 1500]


def _gunicorn(app: str, port: int, workers: int, threads: int, env: dict[str, str]) -> Any:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), app,
         "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--worker-class", "gthread", "--threads", str(threads), "--log-level", "warning",
         "--backlog", "2048"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _ocsp_rate(port: int, path: str, requests: list[bytes], seconds: float, clients: int) -> float:
    """Responses per second seen by ``clients`` client processes running together."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(clients) as pool:
        start = time.perf_counter()
        futures = [pool.submit(_ocsp_client, port, path, requests, seconds) for _ in range(clients)]
        total = sum(f.result() for f in futures)
        return total / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (OCSP)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (OCSP)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (OCSP)")
    parser.add_argument("--only", help="comma-separated sections: issuance,crl,delta,ocsp")
    parser.add_argument(
        "--crl-sizes", help="comma-separated revoked-row counts (default 100000,1000000)"
    )
    args = parser.parse_args()
    issue_n = 20 if args.quick else 300
    crl_sizes = [10_000] if args.quick else [100_000, 1_000_000]
    if args.crl_sizes:
        crl_sizes = [int(n) for n in args.crl_sizes.split(",")]
    ocsp_seconds = 2.0 if args.quick else 10.0

    import django
    from django.conf import settings

    tmp = Path(tempfile.mkdtemp(prefix="pki-bench-"))
    django.setup()
    import logging

    logging.getLogger("celery").setLevel(logging.WARNING)
    settings.PKI_KEY_BACKENDS = {
        "software": {
            "BACKEND": "pki.keys.software.SoftwareKeyBackend",
            "OPTIONS": {"location": str(tmp / "keys"), "passphrase_env": "PKI_BENCH_PASSPHRASE"},
        }
    }
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test.utils import setup_databases, teardown_databases

    old = setup_databases(verbosity=0, interactive=False)
    server: subprocess.Popen[bytes] | None = None
    responder: subprocess.Popen[bytes] | None = None
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509 import ocsp

        from core.actors import Actor
        from pki import authorities, services
        from pki.choices import CrlKind
        from pki.domain import builders, crl_der, names
        from pki.domain.profiles import PROFILES
        from pki.domain.reasons import RevocationReason
        from pki.key_backends import key_backend_get
        from pki.models import Certificate, CertificateAuthority, CrlPublication

        actor = Actor.system("bench")
        only = set(args.only.split(",")) if args.only else {"issuance", "crl", "delta", "ocsp"}
        call_command(
            "pki_init",
            config=str(ROOT / "pki/hierarchy.toml"),
            backend="software",
            stdout=io.StringIO(),
        )
        holder_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        holder = names.Holder(
            national_id="810002813839",
            surname="DONNAT-GADY",
            given_name="ISABELLE",
            title="Médecin",
            card_serial="2600301752",
            profession_code=10,
        )

        def issuance(short_name: str, label: str) -> None:
            with transaction.atomic():
                context = authorities.authority_lock_shared(short_name=short_name)
            # like with like: the very key object, profile, policies and extensions the service
            # uses
            issuer = context.issuer()

            def raw_batch(n: int) -> float:
                start = time.perf_counter()
                for _ in range(n):
                    builders.build_certificate(
                        profile=PROFILES["cps_auth"],
                        public_key=holder_key.public_key(),
                        subject=names.holder_subject(holder),
                        serial=builders.random_serial(secrets.token_bytes),
                        now=dt.datetime.now(dt.UTC),
                        issuer=issuer,
                        holder=holder,
                        policies=context.policies_for("cps_auth"),
                        category=context.category,
                    )
                return time.perf_counter() - start

            def service_batch(n: int) -> float:
                start = time.perf_counter()
                for _ in range(n):
                    services.certificate_issue(
                        authority=short_name,
                        profile="cps_auth",
                        public_key=holder_key.public_key(),
                        holder=holder,
                        actor=actor,
                    )
                return time.perf_counter() - start

            bits = issuer.key.key_size  # type: ignore[union-attr]
            print(f"== issuance, {label} ({issue_n} cps_auth certificates, RSA-{bits} CA key, "
                  "interleaved)")  # fmt: skip
            service_batch(5)  # warm the per-process CA context
            raw_time = service_time = 0.0
            rounds = 4
            for _ in range(rounds):  # interleaved: a load change on this shared machine hits both
                raw_time += raw_batch(issue_n // rounds)
                service_time += service_batch(issue_n // rounds)
            raw_rate = issue_n / raw_time
            service_rate = issue_n / service_time
            print(f"raw build+sign   {raw_rate:8.1f} certs/s")
            print(
                f"service path     {service_rate:8.1f} certs/s  (row, audit, OCSP answer, commit)"
            )
            print(f"ratio            {service_rate / raw_rate:8.2f}  (target >= 0.4)")

        ca = CertificateAuthority.objects.get(short_name="ACI-FO-PP-TEST")
        ca_key = key_backend_get("software").private_key(ca.key_handle)
        with transaction.atomic():
            context = authorities.authority_lock_shared(short_name=ca.short_name)
        issuer = context.issuer()
        if "issuance" in only:
            issuance(ca.short_name, "configured hierarchy, the fair comparison")
            small = (ROOT / "tests/pki/fixtures/test_hierarchy.toml").read_text()
            small = small.replace('-TEST"', '-T2048"').replace("TEST AC", "BENCH 2048 AC")
            (tmp / "hierarchy-2048.toml").write_text(small)
            call_command(
                "pki_init",
                config=str(tmp / "hierarchy-2048.toml"),
                backend="software",
                stdout=io.StringIO(),
            )
            issuance("ACI-FO-PP-T2048", "WORST CASE: RSA-2048 CA, cheapest signature")

        if not Certificate.objects.filter(issuer=ca, profile="cps_auth").exists():
            services.certificate_issue(
                authority=ca.short_name,
                profile="cps_auth",
                public_key=holder_key.public_key(),
                holder=holder,
                actor=actor,
            )
        der = Certificate.objects.filter(issuer=ca).first().der  # type: ignore[union-attr]
        for size in crl_sizes if ({"crl", "delta"} & only) else []:
            print(f"== full CRL, {size:,} revoked rows")
            with connection.cursor() as cur:
                cur.execute("DELETE FROM pki_certificate WHERE status <> 'valid'")
                now = dt.datetime.now(dt.UTC)
                # as the services store them: each listed row carries its encoded CRL entry
                with cur.copy(
                    "COPY pki_certificate (issuer_id, serial, profile, status, subject, "
                    "national_id, holder, not_before, not_after, der, fingerprint_sha256, "
                    "revoked_at, revocation_reason, status_changed_at, crl_entry, created_at) "
                    "FROM STDIN"
                ) as copy:
                    key_compromise = RevocationReason.KEY_COMPROMISE
                    for i in range(size):
                        serial = (1 << 158) | secrets.randbits(158)
                        entry = crl_der.crl_entry(serial, now, key_compromise)
                        copy.write_row(
                            (ca.pk, serial, "cps_auth", "revoked", "CN=x", "", "{}", now, now,
                             der, f"bench{i:058d}", now, "key_compromise", now, entry, now)
                        )  # fmt: skip
                cur.execute("ANALYZE pki_certificate")
            start = time.perf_counter()
            full = services.crl_publish(authority=ca.short_name, kind=CrlKind.FULL, actor=actor)
            ours = time.perf_counter() - start
            assert full.entry_count == size
            serials = [
                int(s)
                for s in Certificate.objects.filter(issuer=ca, status="revoked").values_list(
                    "serial", flat=True
                )
            ]
            start = time.perf_counter()
            entries = [
                builders.revoked_certificate(
                    builders.CrlEntry(s, now, RevocationReason.KEY_COMPROMISE)
                )
                for s in serials
            ]
            x509.CertificateRevocationListBuilder(
                issuer_name=issuer.certificate.subject,
                last_update=now,
                next_update=now + dt.timedelta(days=1),
                revoked_certificates=entries,
            ).sign(ca_key, hashes.SHA256())
            raw = time.perf_counter() - start
            print(f"raw builder      {raw:8.2f} s  (entries built + signed, rows already read)")
            print(f"from database    {ours:8.2f} s  (stored entries, one query, assembled, "
                  f"signed, stored: {len(bytes(full.der)) / 1e6:.1f} MB)")  # fmt: skip
            print(f"ratio            {ours / raw:8.2f}  (target <= 1.5)")

        if "delta" in only:
            table = Certificate.objects.count()
            print(f"== delta CRL, 1,000 new revocations ({table:,}-row table)")
            if not CrlPublication.objects.filter(authority=ca, kind=CrlKind.FULL).exists():
                services.crl_publish(authority=ca.short_name, kind=CrlKind.FULL, actor=actor)
            fresh = list(
                Certificate.objects.filter(issuer=ca, status="valid", profile="cps_auth")[:1000]
            )
            for _ in range(1000 - len(fresh)):
                fresh.append(
                    services.certificate_issue(
                        authority=ca.short_name,
                        profile="cps_auth",
                        public_key=holder_key.public_key(),
                        holder=holder,
                        actor=actor,
                    )
                )
            for cert in fresh:  # through the service: the stored entry is written as in production
                services.certificate_revoke(
                    certificate_id=cert.pk, reason=RevocationReason.SUPERSEDED, actor=actor
                )
            base = (
                CrlPublication.objects.filter(authority=ca, kind=CrlKind.FULL)
                .order_by("-number")
                .values_list("as_of", flat=True)
                .first()
            )
            with connection.cursor() as cur:
                cur.execute(
                    "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + services.DELTA_SQL, [ca.pk, base]
                )
                plan = [row[0] for row in cur.fetchall()]
            print("plan             " + "\n                 ".join(plan))
            start = time.perf_counter()
            delta = services.crl_publish(authority=ca.short_name, kind=CrlKind.DELTA, actor=actor)
            print(f"delta CRL        {time.perf_counter() - start:8.3f} s  "
                  f"({delta.entry_count} entries; target < 0.1 s)")  # fmt: skip

        if "ocsp" not in only:
            return
        print("== OCSP over HTTP, pre-signed answers vs openssl ocsp (same statuses, same client)")
        sample = list(
            Certificate.objects.filter(issuer=ca, profile="cps_auth")
            .exclude(fingerprint_sha256__startswith="bench")
            .order_by("pk")[:50]
        )
        services.ocsp_responses_refresh(actor=actor, certificate_ids=[c.pk for c in sample])
        requests = []
        for c in sample:
            cert = x509.load_der_x509_certificate(bytes(c.der))
            req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer.certificate, hashes.SHA1())
            requests.append(req.build().public_bytes(serialization.Encoding.DER))
        db = settings.DATABASES["default"]
        env = dict(
            os.environ,
            DATABASE_URL=f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            DJANGO_SETTINGS_MODULE="config.settings.test",
        )
        port = free_port()
        server = _gunicorn("bench.pki:trivial_app", port, args.workers, args.threads, env)
        _wait_port(port)
        ceiling = _ocsp_rate(port, "/ocsp", requests, ocsp_seconds, args.clients)
        server.terminate()
        server.wait(timeout=10)
        port = free_port()
        server = _gunicorn("config.wsgi:application", port, args.workers, args.threads, env)
        _wait_port(port)
        _ocsp_rate(port, "/ocsp", requests, 1.0, args.clients)  # warm every worker's connection
        ours_rate = _ocsp_rate(port, "/ocsp", requests, ocsp_seconds, args.clients)

        resp_row = ca.ocsp_responder
        assert resp_row is not None
        write = lambda name, data: (tmp / name).write_bytes(data) and tmp / name  # noqa: E731
        key = key_backend_get("software").private_key(ca.ocsp_key_handle)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        index_lines = []
        for c in sample:
            exp = c.not_after.strftime("%y%m%d%H%M%SZ")
            status = "V" if c.status == "valid" else "R"
            rev = c.revoked_at.strftime("%y%m%d%H%M%SZ") + ",superseded" if c.revoked_at else ""
            index_lines.append(f"{status}\t{exp}\t{rev}\t{int(c.serial):X}\tunknown\t/CN=x\n")
        write("index.txt", "".join(index_lines).encode())
        write("index.txt.attr", b"unique_subject = no\n")
        oport = free_port()
        responder = subprocess.Popen(
            ["openssl", "ocsp", "-index", str(tmp / "index.txt"), "-port", str(oport),
             "-rsigner", str(write("rsigner.pem", builders_pem(resp_row.der))),
             "-rkey", str(write("rkey.pem", key_pem)),
             "-CA", str(write("ca.pem", builders_pem(ca.certificate_der))), "-nmin", "60"],
            stdout=subprocess.DEVNULL, stderr=open(tmp / "responder.log", "wb"),  # noqa: SIM115
        )  # fmt: skip
        # openssl's responder serves one connection at a time and would stall on a bare probe
        deadline = time.monotonic() + 30
        while b"waiting" not in (tmp / "responder.log").read_bytes():
            if time.monotonic() > deadline:
                raise RuntimeError("openssl ocsp did not start")
            time.sleep(0.1)
        try:
            openssl_rate = _ocsp_rate(oport, "/", requests, ocsp_seconds, args.clients)
        except (OSError, RuntimeError):
            print((tmp / "responder.log").read_text(), file=sys.stderr)
            if os.environ.get("PKI_BENCH_KEEP"):
                import shutil

                shutil.copytree(tmp, os.environ["PKI_BENCH_KEEP"], dirs_exist_ok=True)
            raise
        print(f"openssl ocsp     {openssl_rate:8.1f} responses/s")
        shape = f"gunicorn gthread {args.workers} workers x {args.threads} threads"
        print(f"client ceiling   {ceiling:8.1f} responses/s  ({shape}, fixed-body WSGI app)")
        print(f"pre-signed HTTP  {ours_rate:8.1f} responses/s  ({shape}, lean /ocsp front)")
        print(f"client           {args.clients} processes, bare sockets, a new connection each")
        print(f"ratio            {ours_rate / openssl_rate:8.2f}  (target >= 3)")
    finally:
        for proc in (server, responder):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=10)
        connection.close()
        teardown_databases(old, verbosity=0)
        for path in sorted(tmp.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        tmp.rmdir()


def builders_pem(der: bytes | memoryview) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    return x509.load_der_x509_certificate(bytes(der)).public_bytes(serialization.Encoding.PEM)


if __name__ == "__main__":
    main()
