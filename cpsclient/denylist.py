"""The relying party's copy of the signed contactless deny list (ADR 0021).

``deny-list sync URL`` fetches ``URL/full.p7m`` the first time, then each ``URL/delta-N.p7m``
from the local version on, and keeps the verified list in the store directory. Every document
is checked before anything is kept: the CMS signature and the chain to the pinned root
(``openssl cms -verify``, an off-the-shelf verifier), the signer's certificate profile (the
contactless status signing usage, so no other certificate of the PKI can sign a list), the
format, and the version order (a delta applies to exactly the local version; a full list older
than the local one is a rollback and is refused).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from cpsclient.errors import ClientError, DenyListRefused

FORMAT = "cps-contactless-deny-list/1"
# The extended key usage of the status signer's profile (pki.domain.profiles).
STATUS_SIGNING_OID = x509.ObjectIdentifier("1.2.250.1.213.1.7.99.1")
LIST_FILE = "deny-list.json"


def store_dir(value: str | None) -> Path:
    path = Path(value or os.environ.get("CPSCLIENT_HOME") or Path.home() / ".cpsclient")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class DenyList:
    version: int
    issued_at: str
    next_update: str
    entries: dict[str, dict[str, str]] = field(default_factory=dict)  # "uid|card" -> entry

    @staticmethod
    def key(uid: str, card: str) -> str:
        return f"{uid.upper()}|{card}"

    _by_uid: dict[str, str] | None = field(default=None, repr=False, compare=False)
    _by_card: dict[str, str] | None = field(default=None, repr=False, compare=False)

    def reason_for(self, *, uid: str | None = None, card: str | None = None) -> str | None:
        """The deny reason of a UID or card number, ``None`` when it is not listed."""
        if self._by_uid is None or self._by_card is None:
            self._by_uid = {
                e["uid"].upper(): e["reason"] or "denied" for e in self.entries.values() if e["uid"]
            }
            self._by_card = {
                e["card"]: e["reason"] or "denied" for e in self.entries.values() if e["card"]
            }
        if uid and uid.upper() in self._by_uid:
            return self._by_uid[uid.upper()]
        if card and card in self._by_card:
            return self._by_card[card]
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "issued_at": self.issued_at,
            "next_update": self.next_update,
            "entries": sorted(self.entries.values(), key=lambda e: (e["uid"], e["card"])),
        }


def load(store: Path) -> DenyList | None:
    path = store / LIST_FILE
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    deny = DenyList(raw["version"], raw["issued_at"], raw["next_update"])
    for entry in raw["entries"]:
        deny.entries[DenyList.key(entry["uid"], entry["card"])] = entry
    return deny


def save(store: Path, deny: DenyList) -> None:
    path = store / LIST_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(deny.to_json(), sort_keys=True))
    tmp.replace(path)  # atomic: a crash leaves the old list or the new one


def verify(der: bytes, *, ca_file: Path) -> dict[str, Any]:
    """The body of a signed list once its signature, chain and signer profile are checked."""
    with tempfile.TemporaryDirectory() as tmp:
        signed = Path(tmp) / "list.p7m"
        signer = Path(tmp) / "signer.pem"
        signed.write_bytes(der)
        done = subprocess.run(
            [
                "openssl", "cms", "-verify", "-inform", "DER", "-in", str(signed),
                "-CAfile", str(ca_file), "-purpose", "any", "-binary",
                "-signer", str(signer),
            ],
            capture_output=True,
            check=False,
        )  # fmt: skip
        if done.returncode != 0:
            first = done.stderr.decode(errors="replace").strip().splitlines()[:1]
            raise DenyListRefused(f"signature or chain check failed ({' '.join(first)})")
        certificate = x509.load_pem_x509_certificate(signer.read_bytes())
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = x509.ExtendedKeyUsage([])
    if STATUS_SIGNING_OID not in list(usages):
        raise DenyListRefused("the signer is not a contactless status signer")
    try:
        body: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise DenyListRefused("the signed content is not a deny list") from None
    if body.get("format") != FORMAT or body.get("kind") not in ("full", "delta"):
        raise DenyListRefused("the signed content is not a deny list")
    return body


def apply(current: DenyList | None, body: dict[str, Any]) -> DenyList:
    """The list after ``body`` (verified); a rollback or a gap is refused."""
    version = int(body["version"])
    if body["kind"] == "full":
        if current is not None and version < current.version:
            raise DenyListRefused(
                f"rollback refused: version {version} is older than the local {current.version}"
            )
        deny = DenyList(version, body["issued_at"], body["next_update"])
        for entry in body["entries"]:
            deny.entries[DenyList.key(entry["uid"], entry["card"])] = entry
        return deny
    if current is None:
        raise DenyListRefused("a delta needs a full list first")
    if int(body["base_version"]) != current.version or version != current.version + 1:
        raise DenyListRefused(
            f"delta {body['base_version']}->{version} does not follow the local version "
            f"{current.version}"
        )
    deny = DenyList(version, body["issued_at"], body["next_update"], dict(current.entries))
    for entry in body["removed"]:
        deny.entries.pop(DenyList.key(entry["uid"], entry["card"]), None)
    for entry in body["added"]:
        deny.entries[DenyList.key(entry["uid"], entry["card"])] = entry
    return deny


def _fetch(url: str) -> bytes | None:
    """The document at ``url``; ``None`` when there is none (404, or a missing file)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - http(s)/file
            data: bytes = response.read()
            return data
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise ClientError(f"{url}: HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, FileNotFoundError):
            return None
        raise ClientError(f"{url}: {exc.reason}") from None


def sync(base_url: str, *, store: Path, ca_file: Path, full: bool = False) -> DenyList:
    """Bring the local list to the newest published version; returns it."""
    base = base_url.rstrip("/") + "/"
    current = load(store)
    if current is None or full:
        der = _fetch(base + "full.p7m")
        if der is None:
            raise ClientError(f"no deny list published at {base}full.p7m")
        current = apply(current, verify(der, ca_file=ca_file))
        save(store, current)
    while True:
        der = _fetch(f"{base}delta-{current.version}.p7m")
        if der is None:
            return current
        current = apply(current, verify(der, ca_file=ca_file))
        save(store, current)


def _sync_command(args: argparse.Namespace) -> int:
    store = store_dir(args.store)
    ca_file = Path(args.ca_file) if args.ca_file else store / "ca.pem"
    if not ca_file.exists():
        raise ClientError(f"no trust anchor: give --ca-file or put the root at {ca_file}")
    deny = sync(args.url, store=store, ca_file=ca_file, full=args.full)
    print(f"deny list version {deny.version}: {len(deny.entries)} entries, issued {deny.issued_at}")
    return 0


def add_parser(subparsers: Any) -> None:
    top = subparsers.add_parser("deny-list", help="the signed contactless deny list")
    commands = top.add_subparsers(dest="deny_list_command", required=True)
    sync_parser = commands.add_parser("sync", help="fetch, verify and keep the newest list")
    sync_parser.add_argument("url", help="base URL, e.g. https://cms.example/contactless/deny-list")
    sync_parser.add_argument("--ca-file", help="the pinned root CA (PEM); default STORE/ca.pem")
    sync_parser.add_argument(
        "--store", help="local directory (default $CPSCLIENT_HOME, ~/.cpsclient)"
    )
    sync_parser.add_argument(
        "--full", action="store_true", help="fetch the full list again (never an older one)"
    )
    sync_parser.set_defaults(func=_sync_command)
