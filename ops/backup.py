"""Backup and restore: the database and the key material that lives outside the HSM.

An archive is one tar file (mode 600):

- ``database.dump``: ``pg_dump --format=custom`` of the whole database (sealed PIN/PUK and PIN
  mailers, CRLs, pre-signed OCSP answers, the audit chain), taken on an exported snapshot;
- ``keys/<store>/…``: the files of every software key store (CA and OCSP responder keys,
  encrypted PKCS#8; card master keys and the sealing master, AES-GCM under a key derived from the
  passphrase). Keys in an HSM are not copied: the HSM has its own backup;
- ``manifest.json``: the audit head (``SEQ:HASH``) read in the dump's own snapshot, the CRL
  number of each CA, and the SHA-256 of every other member.

The passphrases (``PKI_KEY_PASSPHRASE``…) are never in an archive: they are kept apart, as the
keys they unlock would otherwise be in clear for whoever holds the archive. The dump is taken
first and the key files after it: key files are only ever added, so every key the dump refers to
is in the archive.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_chain_verify, audit_event_create
from core.errors import Conflict

FORMAT = 1
DUMP = "database.dump"
MANIFEST = "manifest.json"


class BackupError(Conflict):
    """A backup or restore that cannot be done; the message says what to do."""


@dataclass(frozen=True)
class Manifest:
    created_at: str
    audit_head: str  # SEQ:HASH, or "" for an empty chain
    crl_numbers: dict[str, int]
    files: dict[str, str]  # member -> sha256

    def to_json(self) -> bytes:
        return json.dumps({"format": FORMAT, **self.__dict__}, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        raw = json.loads(data)
        if raw.get("format") != FORMAT:
            raise BackupError(f"unknown backup format {raw.get('format')!r} (this is {FORMAT})")
        return cls(raw["created_at"], raw["audit_head"], raw["crl_numbers"], raw["files"])


def key_stores() -> dict[str, Path]:
    """The directories of the software key stores, by a stable name: ``pki-<alias>``, ``card``."""
    stores: dict[str, Path] = {}
    for alias, config in settings.PKI_KEY_BACKENDS.items():
        if str(config["BACKEND"]).endswith(".SoftwareKeyBackend"):
            options = config["OPTIONS"]
            assert isinstance(options, dict)
            stores[f"pki-{alias}"] = Path(str(options["location"]))
    if settings.CARD_KEY_STORE["BACKEND"] == "software":
        options = settings.CARD_KEY_STORE["OPTIONS"]
        assert isinstance(options, dict)
        stores["card"] = Path(str(options["location"]))
    return stores


def _pg_environment() -> dict[str, str]:
    """libpq's variables for the default database: no password on a command line."""
    db = connection.settings_dict
    options = db.get("OPTIONS") or {}
    env = dict(os.environ)
    for variable, value in (
        ("PGHOST", db["HOST"] or options.get("host", "")),
        ("PGPORT", str(db["PORT"] or options.get("port", ""))),
        ("PGUSER", db["USER"]),
        ("PGPASSWORD", db["PASSWORD"]),
        ("PGDATABASE", db["NAME"]),
        ("PGSSLMODE", options.get("sslmode", "")),
    ):
        if value:
            env[variable] = str(value)
    return env


def _run(argv: list[str], **kwargs: Any) -> None:
    try:
        result = subprocess.run(  # noqa: S603 - fixed tools, arguments we built
            argv, env=_pg_environment(), capture_output=True, check=False, **kwargs
        )
    except FileNotFoundError:
        raise BackupError(
            f"{argv[0]} is missing: install the PostgreSQL client (apt-get install "
            "postgresql-client), of the server's major version or newer"
        ) from None
    if result.returncode != 0:
        raise BackupError(f"{argv[0]} failed: {result.stderr.decode(errors='replace').strip()}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _key_files() -> Iterator[tuple[str, Path]]:
    for store, folder in sorted(key_stores().items()):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file():
                    yield f"keys/{store}/{path.name}", path


def _snapshot_facts() -> tuple[str, dict[str, int]]:
    """The audit head and the CRL numbers, read in the current transaction's snapshot."""
    with connection.cursor() as cur:
        cur.execute("SELECT seq, hash FROM core_auditevent ORDER BY seq DESC LIMIT 1")
        head = cur.fetchone()
        cur.execute("SELECT short_name, crl_number FROM pki_certificateauthority")
        crl_numbers = {str(name): int(number) for name, number in cur.fetchall()}
    return (f"{head[0]}:{head[1]}" if head else ""), crl_numbers


def backup_create(*, target: Path) -> Manifest:
    """Write an archive to ``target`` (a new file); returns its manifest."""
    if target.exists():
        raise BackupError(f"{target} exists: a backup never overwrites a file")
    with tempfile.TemporaryDirectory(prefix="cms-backup-") as work:
        dump = Path(work) / DUMP
        # The dump and the manifest see the same snapshot: exported from this transaction, whose
        # first statement must be SET TRANSACTION (connect first: no health check inside).
        connection.ensure_connection()
        with transaction.atomic():
            with connection.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cur.execute("SELECT pg_export_snapshot()")
                row = cur.fetchone()
                assert row is not None
                snapshot = str(row[0])
            head, crl_numbers = _snapshot_facts()
            _run(["pg_dump", "--format=custom", f"--snapshot={snapshot}", f"--file={dump}"])
        members = [(DUMP, dump), *_key_files()]
        manifest = Manifest(
            created_at=timezone.now().isoformat(),
            audit_head=head,
            crl_numbers=crl_numbers,
            files={name: _sha256(path) for name, path in members},
        )
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w") as tar:
            data = manifest.to_json()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
            for name, path in members:
                tar.add(path, arcname=name, recursive=False)
    with transaction.atomic():
        audit_event_create(
            actor=Actor.system("backup"),
            action="ops.backup",
            object_type="backup",
            object_id=target.name,
            details={
                "audit_head": manifest.audit_head,
                "archive_sha256": _sha256(target),
                "key_files": sorted(n for n in manifest.files if n != DUMP),
            },
        )
    return manifest


def _database_is_empty() -> bool:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', "
            "'information_schema')"
        )
        row = cur.fetchone()
    return row is not None and int(row[0]) == 0


def backup_restore(*, source: Path) -> Manifest:
    """Restore an archive onto the configured, empty database and empty-or-matching key stores;
    the audit chain must then verify and still hold the head recorded in the archive."""
    stores = key_stores()
    with tempfile.TemporaryDirectory(prefix="cms-restore-") as work:
        folder = Path(work)
        try:
            with tarfile.open(source, mode="r") as tar:
                tar.extractall(folder, filter="data")
        except (OSError, tarfile.TarError) as exc:
            raise BackupError(f"cannot read the archive {source}: {exc}") from None
        try:
            manifest = Manifest.from_json((folder / MANIFEST).read_bytes())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackupError(f"the archive has no readable {MANIFEST}: {exc!r}") from None
        for name, digest in manifest.files.items():
            member = folder / name
            if not member.is_file() or _sha256(member) != digest:
                raise BackupError(f"the archive is damaged: {name} does not match its manifest")
        keys = [name for name in manifest.files if name != DUMP]
        # every key goes somewhere, and nowhere holds a different file of the same name
        placed: list[tuple[Path, Path]] = []
        for name in keys:
            parts = name.split("/")
            # exactly keys/<store>/<file>: a name with more parts, or a "..", would write
            # outside the key store
            if len(parts) != 3 or parts[0] != "keys" or any(p in ("", ".", "..") for p in parts):
                raise BackupError(f"the archive names a key file outside a key store: {name!r}")
            _, store, filename = parts
            if store not in stores:
                raise BackupError(
                    f"the archive holds keys of the software store {store!r}, which this "
                    "configuration does not have (set its location as on the backed-up host)"
                )
            destination = stores[store] / filename
            if destination.exists() and _sha256(destination) != manifest.files[name]:
                raise BackupError(f"{destination} exists and differs from the archive's copy")
            placed.append((folder / name, destination))
        if not _database_is_empty():
            raise BackupError(
                f"database {connection.settings_dict['NAME']!r} is not empty: restore onto a "
                "freshly created database"
            )
        connection.close()  # pg_restore works on its own connection
        _run(
            [
                "pg_restore", "--exit-on-error", "--single-transaction", "--no-owner",
                "--no-privileges", f"--dbname={connection.settings_dict['NAME']}",
                str(folder / DUMP),
            ]
        )  # fmt: skip
        for src, destination in placed:
            destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not destination.exists():
                fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(src.read_bytes())
    report = audit_chain_verify()
    if report.first_break is not None:
        raise BackupError(f"the restored audit chain is broken: {report.first_break}")
    head = f"{report.head_seq}:{report.head_hash}" if report.checked else ""
    if head != manifest.audit_head:
        raise BackupError(
            f"the restored audit head {head} is not the archive's {manifest.audit_head}"
        )
    with transaction.atomic():
        audit_event_create(
            actor=Actor.system("restore"),
            action="ops.restore",
            object_type="backup",
            object_id=source.name,
            details={"audit_head": manifest.audit_head, "created_at": manifest.created_at},
        )
    return manifest
