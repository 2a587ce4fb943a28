"""Archives that restore must refuse before touching the database or a key store: no manifest,
and a key file named to land outside its key store."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest


def _archive(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_an_archive_without_a_manifest_is_refused_clearly(tmp_path: Path, settings) -> None:
    from ops.backup import BackupError, backup_restore

    with pytest.raises(BackupError, match="manifest"):
        backup_restore(source=_archive(tmp_path / "a.tar", {"database.dump": b"x"}))


def test_a_key_file_named_outside_its_store_is_refused(tmp_path: Path, settings) -> None:
    from ops.backup import FORMAT, BackupError, backup_restore

    evil = b"not a key"
    manifest = {
        "format": FORMAT,
        "created_at": "2026-12-06T00:00:00Z",
        "audit_head": "",
        "crl_numbers": {},
        "files": {"keys/card/../../evil": hashlib.sha256(evil).hexdigest()},
    }
    archive = _archive(
        tmp_path / "b.tar",
        {"manifest.json": json.dumps(manifest).encode(), "keys/card/x": b"", "evil": evil},
    )
    with pytest.raises(BackupError, match="outside a key store"):
        backup_restore(source=archive)
