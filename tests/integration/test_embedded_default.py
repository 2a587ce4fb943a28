"""`make run`'s path on embedded defaults: PostgreSQL, software keys, eager tasks, a real server."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from cardsim.rig import free_port
from tests.conftest import wait_until
from tests.integration.conftest import clean_environment
from tests.integration.conftest import manage as run_manage

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, scratch_database):
    var = tmp_path_factory.mktemp("var")
    env = clean_environment()
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL=scratch_database(),
        CMS_VAR_DIR=str(var),
        PKI_KEY_PASSPHRASE="embedded-default-test-passphrase",
    )

    def manage(*args: str, stdin: str | None = None) -> str:
        return run_manage(env, *args, stdin=stdin)

    manage("migrate", "--no-input")
    admin = manage("bootstrap_admin")
    manage("pki_init")
    manage("pki_publish")
    return env, manage, admin


def test_setup_commands_are_idempotent(embedded):
    _, manage, first = embedded
    assert "password: " in first
    assert "already exists" in manage("bootstrap_admin")
    assert "created" not in manage("pki_init")
    manage("audit_verify")


def test_server_answers_the_api_and_publishes_crls(embedded):
    env, _, admin = embedded
    password = admin.split("password: ", 1)[1].split()[0]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                urllib.request.urlopen(f"{base}/api/schema/", timeout=2)
            except OSError:
                return False
            return True

        wait_until(up)
        request = urllib.request.Request(
            f"{base}/api/v1/auth/token",
            data=json.dumps({"username": "admin", "password": password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        token = json.load(urllib.request.urlopen(request, timeout=10))["token"]
        me = urllib.request.Request(
            f"{base}/api/v1/me", headers={"Authorization": f"Token {token}"}
        )
        assert json.load(urllib.request.urlopen(me, timeout=10))["username"] == "admin"
        crl = urllib.request.urlopen(f"{base}/pki/crl/ACI-FO-PP-TEST.crl", timeout=10)
        assert crl.headers["Content-Type"] == "application/pkix-crl"
        check = subprocess.run(
            ["openssl", "crl", "-inform", "DER", "-noout", "-crlnumber"],
            input=crl.read(),
            capture_output=True,
            check=True,
        )
        assert check.stdout.startswith(b"crlNumber=")
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_issue_and_revoke_by_serial(embedded, tmp_path):
    """Serials are 128-bit: the database must keep them exact to find them again."""
    _, manage, admin = embedded
    password = admin.split("password: ", 1)[1].split()[0]
    key, csr, out = tmp_path / "k.pem", tmp_path / "req.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(csr),
            "-subj",
            "/CN=ignored",
        ],
        check=True,
        capture_output=True,
    )
    manage(
        "pki_issue",
        "--ca",
        "ACI-FO-TECH-TEST",
        "--profile",
        "station_client",
        "--csr",
        str(csr),
        "--out",
        str(out),
        "--officer",
        "admin",
        stdin=password + "\n",
    )
    serial = (
        subprocess.run(
            ["openssl", "x509", "-in", str(out), "-noout", "-serial"],
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .split("=")[1]
    )
    assert int(serial, 16).bit_length() >= 120
    manage(
        "pki_revoke",
        "--ca",
        "ACI-FO-TECH-TEST",
        "--serial",
        f"0x{serial}",
        "--reason",
        "key_compromise",
    )
    manage("pki_publish")
