"""The station credential on disk: a JSON file readable by its owner only (mode 0600)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


def default_path() -> Path:
    """``$XDG_CONFIG_HOME/cps-station/credential.json`` (``~/.config`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cps-station" / "credential.json"


@dataclass(frozen=True)
class Credential:
    """What enrollment gave the station. ``token`` never appears in a repr."""

    cms: str
    station_id: str
    token: str
    certificate_pem: str | None = None
    key_path: str | None = None

    def __repr__(self) -> str:
        return f"Credential(cms={self.cms!r}, station_id={self.station_id!r}, token='****')"


def save(credential: Credential, path: Path) -> None:
    """Write atomically with mode 0600 in a 0700 directory."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(
            {
                "cms": credential.cms,
                "station_id": credential.station_id,
                "token": credential.token,
                "certificate_pem": credential.certificate_pem,
                "key_path": credential.key_path,
            },
            fh,
        )
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load(path: Path) -> Credential:
    """Read the credential; refuses a file others can read."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
    data = json.loads(path.read_text())
    return Credential(
        cms=str(data["cms"]),
        station_id=str(data["station_id"]),
        token=str(data["token"]),
        certificate_pem=data.get("certificate_pem"),
        key_path=data.get("key_path"),
    )


def client_certificate(credential: Credential) -> tuple[str, str] | None:
    """(certificate file, key file) of the station's client certificate, or None without one.

    The certificate is public; it is written once next to the key (``station-cert.pem``) because
    ``ssl`` loads a certificate chain from files only.
    """
    if not credential.certificate_pem or not credential.key_path:
        return None
    key_file = Path(credential.key_path)
    certificate_file = key_file.with_name("station-cert.pem")
    pem = credential.certificate_pem
    if not certificate_file.exists() or certificate_file.read_text() != pem:
        fd = os.open(certificate_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(pem)
    return str(certificate_file), str(key_file)
