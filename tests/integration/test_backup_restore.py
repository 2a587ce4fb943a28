"""The backup and restore drill (docs/operations.md): `manage.py backup` on a system with an
issued card, a revoked certificate and published CRLs; `manage.py restore` onto a fresh database
and empty key stores; then `audit_verify --expect-head` with the head recorded before the backup
passes, the CRLs and the pre-signed OCSP answers are the same bytes, and the restored keys sign
(a live OCSP answer with a nonce verifies)."""

from __future__ import annotations

import re
import stat
import subprocess
import tarfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.integration.conftest import clean_environment, manage, server
from tests.integration.openssl_ocsp import OcspFiles, ocsp_status

pytestmark = pytest.mark.integration

PASSPHRASE = "backup-drill-passphrase-kept-apart"


def _env(database: str, var: Path) -> dict[str, str]:
    env = clean_environment()
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL=database,
        CMS_VAR_DIR=str(var),
        PKI_KEY_PASSPHRASE=PASSPHRASE,
        PKI_OCSP_NONCE_SIGNING="1",  # a nonce gets a live answer (ADR 0019)
    )
    return env


def _revoked_certificate(env: dict[str, str], work: Path) -> int:
    key, csr, cert = work / "k.pem", work / "req.pem", work / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=ignored"],
        check=True, capture_output=True,
    )  # fmt: skip
    admin = manage(env, "bootstrap_admin")
    password = admin.split("password: ", 1)[1].split()[0]
    manage(
        env, "pki_issue", "--ca", "ACI-FO-TECH-TEST", "--profile", "station_client",
        "--csr", str(csr), "--out", str(cert), "--officer", "admin", stdin=password + "\n",
    )  # fmt: skip
    serial = subprocess.run(
        ["openssl", "x509", "-in", cert, "-noout", "-serial"],
        check=True, capture_output=True, text=True,
    ).stdout.strip().split("=")[1]  # fmt: skip
    manage(env, "pki_revoke", "--ca", "ACI-FO-TECH-TEST", "--serial", f"0x{serial}",
           "--reason", "key_compromise")  # fmt: skip
    return int(serial, 16)


def _files(database: str, serial: int, work: Path) -> OcspFiles:
    with psycopg.connect(database) as db:
        row = db.execute(
            "SELECT c.der, a.certificate_der FROM pki_certificate c "
            "JOIN pki_certificateauthority a ON a.id = c.issuer_id WHERE c.serial = %s",
            [serial],
        ).fetchone()
        assert row is not None
        cas = [
            bytes(r[0]) for r in db.execute("SELECT certificate_der FROM pki_certificateauthority")
        ]

    def pem(der: bytes, name: str) -> Path:
        path = work / name
        subprocess.run(
            ["openssl", "x509", "-inform", "DER", "-out", str(path)], input=der, check=True
        )
        return path

    chain = work / "chain.pem"
    chain.write_text("".join(pem(der, f"ca{i}.pem").read_text() for i, der in enumerate(cas)))
    return OcspFiles(pem(bytes(row[0]), f"{serial}.pem"), pem(bytes(row[1]), "issuer.pem"), chain)


def _published(base_url: str, database: str, serials: dict[str, int], work: Path) -> dict:
    """What relying parties get: every CRL, and the pre-signed OCSP answers (POST and GET)."""
    seen: dict[str, object] = {}
    with psycopg.connect(database) as db:
        names = [r[0] for r in db.execute("SELECT short_name FROM pki_certificateauthority")]
    for name in names:
        for suffix in ("", "-delta"):
            try:
                with urllib.request.urlopen(f"{base_url}/pki/crl/{name}{suffix}.crl") as reply:
                    seen[f"crl {name}{suffix}"] = reply.read()
            except urllib.error.HTTPError as exc:
                seen[f"crl {name}{suffix}"] = exc.code
    for label, serial in serials.items():
        folder = work / label
        folder.mkdir(parents=True, exist_ok=True)
        files = _files(database, serial, folder)
        for method in ("POST", "GET"):
            seen[f"ocsp {label} {method}"] = ocsp_status(
                base_url, files, method=method, nonce=False, work=folder
            )
    return seen


def test_backup_restores_onto_a_fresh_database_with_the_same_chain_crls_and_ocsp(
    tmp_path: Path, scratch_database: Callable[[], str]
) -> None:
    first = _env(scratch_database(), tmp_path / "var-a")
    manage(first, "migrate", "--no-input")
    manage(first, "pki_init")
    demo = manage(first, "demo", "--path", "inprocess")
    card = re.search(r"certificate auth: serial ([0-9a-f]+) \(valid\)", demo)
    assert card is not None, demo
    serials = {"card": int(card.group(1), 16), "revoked": _revoked_certificate(first, tmp_path)}
    manage(first, "pki_publish")
    head = re.search(r"head (\d+:[0-9a-f]{64})", manage(first, "audit_verify"))
    assert head is not None
    with server(first, log=tmp_path / "a.log") as url:
        before = _published(url, first["DATABASE_URL"], serials, tmp_path / "before")
    assert before["ocsp card POST"][0] == "good"  # type: ignore[index]
    assert before["ocsp revoked GET"][0] == "revoked"  # type: ignore[index]

    archive = tmp_path / "backup.tar"
    assert head.group(1) in manage(first, "backup", str(archive))
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        members = tar.getnames()
    assert "database.dump" in members and "manifest.json" in members
    assert any(m.startswith("keys/pki-software/") and m.endswith(".p8.pem") for m in members)
    assert any(m.startswith("keys/card/seal.") for m in members)  # the sealing master
    assert PASSPHRASE.encode() not in archive.read_bytes()
    assert "exists" in manage(first, "backup", str(archive), check=False)

    second = _env(scratch_database(), tmp_path / "var-b")
    restored = manage(second, "restore", str(archive))
    assert head.group(1) in restored
    assert f"head {head.group(1)}" not in manage(second, "audit_verify")  # restore is audited
    manage(second, "audit_verify", "--expect-head", head.group(1))
    with server(second, log=tmp_path / "b.log") as url:
        after = _published(url, second["DATABASE_URL"], serials, tmp_path / "after")
        # the restored CA keys sign: a live answer (nonce) from the restored OCSP responder key
        live, _ = ocsp_status(
            url, _files(second["DATABASE_URL"], serials["card"], tmp_path), method="POST",
            nonce=True, work=tmp_path, echo=True,
        )  # fmt: skip
    assert after == before
    assert live == "good"

    # a restore never lands on a database in use
    assert "is not empty" in manage(second, "restore", str(archive), check=False)
