"""OCSP through the production front (issue 12): pre-signed answers served by nginx's cache in
front of gunicorn (scripts/topology.sh), against ``openssl ocsp`` as the responder on the same
index, with the same C load generator (wrk), the same requests (POST and GET) and the same
statuses. Prints requests/s, the ratio (target >= 3) for POST and for GET, nginx's cache-miss
rate during the runs and the ratio with the cache off. ``openssl ocsp`` is started afresh for
each of its runs (its children hang on a connection wrk leaves half-sent when it stops).

    python bench/ocsp_front.py [--certificates 200] [--seconds 10] [--connections 16]

Needs nginx, wrk, redis-server and PostgreSQL's initdb (`make system`, `make services`); run it
on a quiet machine (under the pcscd lock on a shared one)."""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from ops.topology import Topology

# Run in the topology: N certificates of the CPS auth profile, one in ten revoked; the data
# `openssl ocsp` needs (its index, the responder certificate and key, the CA).
PREPARE = """
import json
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from core.actors import Actor
from pki import services
from pki.domain.names import Holder
from pki.domain.reasons import RevocationReason
from pki.key_backends import key_backend_get
from pki.models import CertificateAuthority

actor = Actor.system("bench")
ca = CertificateAuthority.objects.get(short_name=AUTHORITY)
public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
certs = []
for n in range(COUNT):
    holder = Holder(national_id=f"81{n:010d}", surname="BENCH", given_name="OCSP",
                    title="Médecin", card_serial=f"26{n:08d}", profession_code=10,
                    email=f"bench{n}@example.org")
    cert = services.certificate_issue(authority=AUTHORITY, profile="cps_auth", actor=actor,
                                      public_key=public, holder=holder)
    if n % 10 == 0:
        cert = services.certificate_revoke(certificate_id=cert.pk,
                                           reason=RevocationReason.SUPERSEDED, actor=actor)
    certs.append(cert)
key = key_backend_get("software").private_key(ca.ocsp_key_handle)
print(json.dumps({
    "ca": bytes(ca.certificate_der).hex(),
    "responder": bytes(ca.ocsp_responder.der).hex(),
    "key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode(),
    "certs": [[bytes(c.der).hex(), c.status, c.revoked_at.strftime("%y%m%d%H%M%SZ")
               if c.revoked_at else ""] for c in certs],
}))
"""

WRK_SCRIPT = """
local requests = {}
local i = 0
local function unhex(h)
  return (h:gsub("..", function(c) return string.char(tonumber(c, 16)) end))
end
-- built in init: wrk.format adds the Host header only once wrk knows it
init = function(args)
  for line in io.lines(os.getenv("OCSP_REQUESTS")) do
    local method, path, body = line:match("^(%S+) (%S+) ?(%x*)$")
    local headers = {}
    -- openssl's responder answers one request per connection and, on GET, waits for the
    -- client to close unless told (it closes after each answer anyway): OCSP_CLOSE=1 for it
    if os.getenv("OCSP_CLOSE") == "1" then headers["Connection"] = "close" end
    local payload = nil
    if method == "POST" then
      headers["Content-Type"] = "application/ocsp-request"
      payload = unhex(body)
    end
    requests[#requests + 1] = wrk.format(method, path, headers, payload)
  end
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
"""


def pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)


def wrk(
    url: str, lines: list[str], work: Path, seconds: int, connections: int, *, close: bool = False
) -> dict[str, Any]:
    """requests/s and error counts of one wrk run over ``lines`` ("METHOD path [hexbody]")."""
    (work / "requests.txt").write_text("\n".join(lines) + "\n")
    (work / "requests.lua").write_text(WRK_SCRIPT)
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
         "-s", str(work / "requests.lua"), url],
        env=dict(os.environ, OCSP_REQUESTS=str(work / "requests.txt"), OCSP_CLOSE=str(int(close))),
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    )  # fmt: skip
    out = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rate is None:
        raise RuntimeError(f"wrk printed no rate: {out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rate": float(rate.group(1)),
        "non2xx": int(bad.group(1)) if bad else 0,
        "errors": errors.group(1) if errors else "none",
    }


def statuses(url_post: str, url_get: str, bodies: list[bytes]) -> list[str]:
    """The certificate status of each request's answer, asked by POST and by GET."""
    found = []
    for body in bodies:
        request = urllib.request.Request(
            url_post, data=body, headers={"Content-Type": "application/ocsp-request"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            posted = ocsp.load_der_ocsp_response(answer.read()).certificate_status.name
        encoded = urllib.parse.quote(base64.b64encode(body).decode(), safe="")
        with urllib.request.urlopen(f"{url_get}{encoded}", timeout=30) as answer:
            got = ocsp.load_der_ocsp_response(answer.read()).certificate_status.name
        found.append(f"{posted}/{got}")
    return found


def cache_counts(access_log: Path, start: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    with access_log.open() as log:
        log.seek(start)
        for line in log:
            if " /ocsp" in line:
                status = line.rsplit("cache=", 1)[1].split()[0]
                counts[status] = counts.get(status, 0) + 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--certificates", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ocsp-front-"))
    topology = Topology(work / "topology", knobs={"TOPOLOGY_NGINX_WORKERS": "1"})
    responder = None
    try:
        print("== OCSP through the production front (nginx cache) vs openssl ocsp, wrk")
        topology.up()
        authority = topology.python(
            "import json\nfrom pki.models import CertificateAuthority as C\n"
            "print(json.dumps([c.short_name for c in C.objects.all() "
            "if 'cps_auth' in (c.profiles or [])][0]))"
        )
        data = topology.python(
            f"AUTHORITY = {authority!r}\nCOUNT = {args.certificates}\n" + PREPARE, timeout=1800
        )
        ca_der = bytes.fromhex(data["ca"])
        issuer = x509.load_der_x509_certificate(ca_der)
        bodies, index = [], []
        for der_hex, _status, revoked_at in data["certs"]:
            cert = x509.load_der_x509_certificate(bytes.fromhex(der_hex))
            builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
            bodies.append(builder.build().public_bytes(Encoding.DER))
            expires = cert.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
            flag, revoked = ("R", f"{revoked_at},superseded") if revoked_at else ("V", "")
            index.append(f"{flag}\t{expires}\t{revoked}\t{cert.serial_number:X}\tunknown\t/CN=x\n")
        (work / "index.txt").write_text("".join(index))
        (work / "index.txt.attr").write_text("unique_subject = no\n")
        (work / "ca.pem").write_bytes(pem(ca_der))
        (work / "rsigner.pem").write_bytes(pem(bytes.fromhex(data["responder"])))
        (work / "rkey.pem").write_text(data["key"])
        (work / "rkey.pem").chmod(0o600)

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        openssl_url = f"http://127.0.0.1:{port}"
        log = (work / "responder.log").open("wb")

        def responder_start() -> subprocess.Popen[bytes]:
            """A fresh ``openssl ocsp`` responder, ready once it answers a real request (-multi
            logs to syslog, not stderr). A fresh one for every run: OpenSSL 3.0's responder
            child spins at 100 % CPU, answering nothing more, on a connection the client closed
            before sending a whole request, as wrk does to its open connections when it stops;
            after one wrk run every child of -multi is lost (the cause of "no GET answered"
            when GET ran after POST on the same responder)."""
            proc = subprocess.Popen(
                ["openssl", "ocsp", "-index", str(work / "index.txt"), "-port", str(port),
                 "-rsigner", str(work / "rsigner.pem"), "-rkey", str(work / "rkey.pem"),
                 "-CA", str(work / "ca.pem"), "-nmin", "60", "-multi", "2"],
                stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
            deadline = time.monotonic() + 30
            while True:
                try:
                    statuses(f"{openssl_url}/", f"{openssl_url}/", bodies[:1])
                    return proc
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("openssl ocsp did not start") from None
                    time.sleep(0.2)

        def responder_stop(proc: subprocess.Popen[bytes]) -> None:
            # with -multi, openssl leads a process group of its children
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

        front = topology.http
        ours = statuses(f"{front}/ocsp", f"{front}/ocsp/", bodies)
        responder = responder_start()
        theirs = statuses(f"{openssl_url}/", f"{openssl_url}/", bodies)
        responder_stop(responder)
        responder = None
        assert ours == theirs, "openssl ocsp and the front disagree on a status"
        n_revoked = sum(1 for s in ours if s.startswith("REVOKED"))
        print(
            f"requests         {len(bodies)} certificates ({n_revoked} revoked), SHA-1 CertID, "
            f"no nonce; the same statuses from both (checked, POST and GET)"
        )

        def lines(prefix: str) -> dict[str, list[str]]:
            return {
                "POST": [f"POST {prefix or '/'} {b.hex()}" for b in bodies],
                "GET": [
                    f"GET {prefix}/{urllib.parse.quote(base64.b64encode(b).decode(), safe='')}"
                    for b in bodies
                ],
            }

        access = topology.directory / "log" / "access.log"
        results: dict[str, dict[str, Any]] = {}
        for method in ("POST", "GET"):
            mark = access.stat().st_size
            results[f"front {method}"] = wrk(
                front, lines("/ocsp")[method], work, args.seconds, args.connections
            )
            counts = cache_counts(access, mark)
            total = sum(counts.values())
            misses = total - counts.get("HIT", 0)
            results[f"front {method}"]["miss"] = misses / total if total else 1.0
            results[f"front {method}"]["counts"] = counts
            responder = responder_start()
            results[f"openssl {method}"] = wrk(
                openssl_url, lines("")[method], work, args.seconds, args.connections, close=True
            )
            responder_stop(responder)
            responder = None
        topology.script("ocsp-cache", "off")
        for method in ("POST", "GET"):
            results[f"no cache {method}"] = wrk(
                front, lines("/ocsp")[method], work, args.seconds, args.connections
            )
        topology.script("ocsp-cache", "on")

        shape = f"wrk 1 thread, {args.connections} connections, {args.seconds} s"
        print(f"load generator   {shape}; nginx 1 worker; 2 gunicorn replicas behind it")
        for name, r in results.items():
            extra = f"  cache misses {r['miss']:.2%}" if "miss" in r else ""
            print(
                f"{name:16} {r['rate']:10.1f} responses/s  (non-2xx {r['non2xx']:.0f}, "
                f"socket errors {r['errors']}){extra}"
            )
        # The cache's miss rate: what reached gunicorn, against what a hot set of this size
        # costs at steady state (one miss per distinct request per max-age).
        max_age = int(topology.settings.get("PKI_OCSP_CACHE_MAX_AGE", "60"))
        for method in ("POST", "GET"):
            r = results[f"front {method}"]
            counts = r["counts"]
            total = sum(counts.values())
            bound = len(bodies) / (r["rate"] * max_age) if r["rate"] else 1.0
            detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            print(
                f"cache {method:4}       {r['miss']:.3%} of {total} requests missed ({detail}); "
                f"{len(bodies)} distinct requests, max-age {max_age} s: steady state "
                f"{bound:.3%} (cache warmed by the status check)"
            )
        for method in ("POST", "GET"):
            baseline = results[f"openssl {method}"]["rate"]
            if not baseline:
                # side by side then: our GET against openssl's POST (the same answers)
                post = results["openssl POST"]["rate"]
                versus = (
                    f"; front GET / openssl POST {results[f'front {method}']['rate'] / post:.2f}"
                    if post
                    else ""
                )
                print(f"ratio {method:4}       n/a (openssl ocsp answered no {method}){versus}")
                continue
            cached = results[f"front {method}"]["rate"] / baseline
            uncached = results[f"no cache {method}"]["rate"] / baseline
            print(f"ratio {method:4}       {cached:8.2f}  (target >= 3); cache off: {uncached:.2f}")
        print(
            "openssl ocsp: a fresh responder for each run (its -multi children spin on a "
            "connection closed mid-request, as wrk leaves them when it stops)"
        )
        print(json.dumps({k: v["rate"] for k, v in results.items()}))
    finally:
        if responder is not None:  # with -multi, openssl leads a process group of its children
            with contextlib.suppress(ProcessLookupError):
                os.killpg(responder.pid, signal.SIGKILL)
            responder.wait(timeout=10)
        topology.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
