"""`make run`'s script (scripts/run-local.sh) as a user runs it, on the settings it uses
(config.settings.local) and PostgreSQL: it prints the demo card and serves; the card's OCSP
answers verify with `openssl ocsp` (POST and GET, with and without nonce: both the pre-signed
answer, a nonce ignored per RFC 5019 with openssl's "no nonce in response" warning, ADR 0019); a SIGTERM to its process group stops every process it started.

Regression: on the SQLite embedded default, every pre-signed answer was an HTTP 500 (a naive
datetime from the raw cursor compared with an aware one), and no test ran those settings."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from cardsim.rig import free_port, wait_until
from tests.integration.conftest import clean_environment, serves
from tests.integration.openssl_ocsp import OcspFiles, ocsp_status

pytestmark = [pytest.mark.integration, pytest.mark.pcscd]

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    base_url: str
    database: str
    var: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def processes_of(var: Path) -> list[tuple[int, str]]:
    """Every live process started for this run: they all carry its CMS_VAR_DIR (the private
    pcscd, the virtual card and the station included), or name it on their command line."""
    marker = f"CMS_VAR_DIR={var}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (marker in environ.split(b"\0") or str(var).encode() in cmdline):
            found.append((int(entry.name), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return found


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory, scratch_database: Callable[[], str]
) -> Iterator[Running]:
    var = tmp_path_factory.mktemp("var")
    database = scratch_database()
    base_url = f"http://127.0.0.1:{free_port()}"
    env = clean_environment()
    env.update(
        PY=sys.executable,
        RUN_ADDRESS=base_url.removeprefix("http://"),
        DATABASE_URL=database,
        CMS_VAR_DIR=str(var),
    )
    log = var / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["scripts/run-local.sh"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as `make run` in a terminal
        )
    run = Running(proc, base_url, database, var, log)
    try:

        def serving() -> bool:
            assert proc.poll() is None, f"run-local.sh stopped:\n{run.output()}"
            return "serving on" in run.output() and serves(base_url)

        wait_until(serving, timeout=600, interval=0.5, what="make run to serve")
        yield run
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=120)


def test_make_run_prints_the_demo_card_and_serves(running: Running) -> None:
    output = running.output()
    assert re.search(r"CPS4 card \d{20} is ACTIVE for holder", output), output
    assert "administrator 'admin' created; password: " in output
    assert "manage.py demo failed" not in output


def _demo_card_files(running: Running, work: Path) -> OcspFiles:
    serial = re.search(r"certificate auth: serial ([0-9a-f]+) \(valid\)", running.output())
    assert serial is not None, running.output()
    with psycopg.connect(running.database) as db:
        row = db.execute(
            "SELECT c.der, a.short_name FROM pki_certificate c "
            "JOIN pki_certificateauthority a ON a.id = c.issuer_id WHERE c.serial = %s",
            [int(serial.group(1), 16)],
        ).fetchone()
        assert row is not None
        cas = [r[0] for r in db.execute("SELECT short_name FROM pki_certificateauthority")]
    der, issuer = row

    def pem(der: bytes, path: Path) -> Path:
        subprocess.run(
            ["openssl", "x509", "-inform", "DER", "-out", str(path)], input=der, check=True
        )
        return path

    def published(short_name: str) -> bytes:  # as a relying party fetches it
        with urllib.request.urlopen(f"{running.base_url}/pki/ca/{short_name}.cer") as reply:
            return reply.read()

    chain = work / "chain.pem"
    chain.write_text("".join(pem(published(n), work / f"{n}.pem").read_text() for n in cas))
    return OcspFiles(pem(bytes(der), work / "card.pem"), work / f"{issuer}.pem", chain)


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("nonce", [False, True], ids=["no-nonce", "nonce"])
def test_ocsp_answers_for_the_demo_card_verify(
    running: Running, tmp_path: Path, method: str, nonce: bool
) -> None:
    files = _demo_card_files(running, tmp_path)
    status, _ = ocsp_status(running.base_url, files, method=method, nonce=nonce, work=tmp_path)
    assert status == "good"
    assert "Internal Server Error" not in running.output()


def test_sigterm_to_the_process_group_stops_every_process(running: Running) -> None:
    rig = (running.var / "demo" / "rig.json").read_text()
    before = processes_of(running.var)
    names = " ".join(cmd for _, cmd in before)
    # what make run leaves running: the server, the station, the virtual card (and the private
    # pcscd as root, recorded in the rig)
    assert "runserver" in names and "personalization_station" in names and "cardsim" in names
    assert '"station"' in rig and '"cardsim"' in rig

    os.killpg(running.proc.pid, signal.SIGTERM)
    assert running.proc.wait(timeout=120) == 143
    left = processes_of(running.var)
    assert left == [], f"still running after SIGTERM: {left}"
    assert not (running.var / "demo" / "rig.json").exists()
