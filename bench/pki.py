"""PKI benchmarks (DESIGN.md §10), printed as figures and ratios measured in one run.

    python bench/pki.py [--quick]

Sets up Django with the test settings on PostgreSQL, creates its own database (dropped at the end)
and its own software-backend CA keys in a temporary directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import io
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("PKI_BENCH_PASSPHRASE", secrets.token_hex(16))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def _ocsp_client(port: int, path: str, requests: list[bytes], seconds: float) -> int:
    """Sequential POSTs, a new connection each (openssl's responder closes them)."""
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        body = requests[done % len(requests)]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", path, body, {"Content-Type": "application/ocsp-request"})
        reply = conn.getresponse()
        data = reply.read()
        conn.close()
        if reply.status != 200 or not data:
            raise RuntimeError(f"OCSP answer {reply.status}")
        done += 1
    return done


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
    parser.add_argument("--clients", type=int, default=4, help="client processes (OCSP)")
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
        from pki.domain import builders, names
        from pki.domain.profiles import PROFILES
        from pki.domain.reasons import RevocationReason
        from pki.key_backends import key_backend_get
        from pki.models import Certificate, CertificateAuthority

        actor = Actor.system("bench")
        call_command(
            "pki_init",
            config=str(ROOT / "tests/pki/fixtures/test_hierarchy.toml"),
            backend="software",
            stdout=io.StringIO(),
        )
        ca = CertificateAuthority.objects.get(short_name="ACI-FO-PP-TEST")
        ca_key = key_backend_get("software").private_key(ca.key_handle)
        with transaction.atomic():
            context = authorities.authority_lock_shared(short_name=ca.short_name)
        # like with like: the very key object, profile, policies and extensions the service uses
        issuer = context.issuer()
        holder_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        holder = names.Holder(
            national_id="810002813839",
            surname="DONNAT-GADY",
            given_name="ISABELLE",
            title="Médecin",
            card_serial="2600301752",
            profession_code=10,
        )

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
                    authority=ca.short_name,
                    profile="cps_auth",
                    public_key=holder_key.public_key(),
                    holder=holder,
                    actor=actor,
                )
            return time.perf_counter() - start

        bits = ca_key.key_size
        print(f"== issuance ({issue_n} cps_auth certificates, RSA-{bits} CA key, interleaved)")
        service_batch(5)  # warm the per-process CA context
        raw_time = service_time = 0.0
        rounds = 4
        for _ in range(rounds):  # interleaved: a load change on this shared machine hits both
            raw_time += raw_batch(issue_n // rounds)
            service_time += service_batch(issue_n // rounds)
        raw_rate = issue_n / raw_time
        service_rate = issue_n / service_time
        print(f"raw build+sign   {raw_rate:8.1f} certs/s")
        print(f"service path     {service_rate:8.1f} certs/s  (row, audit, OCSP answer, 1 commit)")
        print(f"ratio            {service_rate / raw_rate:8.2f}  (target >= 0.4)")

        der = Certificate.objects.first().der  # type: ignore[union-attr]
        for size in crl_sizes:
            print(f"== full CRL, {size:,} revoked rows")
            with connection.cursor() as cur:
                cur.execute("DELETE FROM pki_certificate WHERE status <> 'valid'")
                now = dt.datetime.now(dt.UTC)
                with cur.copy(
                    "COPY pki_certificate (issuer_id, serial, profile, status, subject, "
                    "national_id, holder, not_before, not_after, der, fingerprint_sha256, "
                    "revoked_at, revocation_reason, status_changed_at, created_at) FROM STDIN"
                ) as copy:
                    for i in range(size):
                        serial = (1 << 158) | secrets.randbits(158)
                        copy.write_row(
                            (ca.pk, serial, "cps_auth", "revoked", "CN=x", "", "{}", now, now,
                             der, f"bench{i:058d}", now, "key_compromise", now, now)
                        )  # fmt: skip
                cur.execute("ANALYZE pki_certificate")
            start = time.perf_counter()
            services.crl_publish(authority=ca.short_name, kind=CrlKind.FULL, actor=actor)
            ours = time.perf_counter() - start
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
            print(f"raw builder      {raw:8.2f} s")
            print(f"from database    {ours:8.2f} s")
            print(f"ratio            {ours / raw:8.2f}  (target <= 1.5)")

        print("== delta CRL, 1,000 new revocations")
        fresh = list(Certificate.objects.filter(issuer=ca, status="valid")[:1000])
        missing = 1000 - len(fresh)
        for _ in range(missing):
            fresh.append(
                services.certificate_issue(
                    authority=ca.short_name,
                    profile="cps_auth",
                    public_key=holder_key.public_key(),
                    holder=holder,
                    actor=actor,
                )
            )
        Certificate.objects.filter(pk__in=[c.pk for c in fresh]).update(
            status="revoked",
            revoked_at=dt.datetime.now(dt.UTC),
            revocation_reason="superseded",
            status_changed_at=dt.datetime.now(dt.UTC),
        )
        start = time.perf_counter()
        delta = services.crl_publish(authority=ca.short_name, kind=CrlKind.DELTA, actor=actor)
        print(f"delta CRL        {time.perf_counter() - start:8.3f} s  "
              f"({delta.entry_count} entries; target < 0.1 s)")  # fmt: skip

        print("== OCSP over HTTP, pre-signed answers vs openssl ocsp (same statuses)")
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
        port = _free_port()
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi:application",
             "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
             "--worker-class", "gthread", "--threads", "4", "--log-level", "warning"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
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
        oport = _free_port()
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
        print(f"pre-signed HTTP  {ours_rate:8.1f} responses/s  (gunicorn, {args.workers} workers)")
        print(f"client           {args.clients} processes, a new connection per request, both")
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
