"""Card master keys (DESIGN.md §3): AES keys that only ever compute AES-CMAC inside their backend.

Every per-card key the personalization session needs is one AES-CMAC of the master key over
public card data (SCP03 KDD, DESFire UID ‖ AID ‖ system id, card serial), so a backend only has
to offer ``cmac(label, data)``: the software store keeps the masters encrypted at rest under the
passphrase of an environment variable; the PKCS#11 store keeps them on the token (sensitive,
not extractable) and lets the token compute ``CKM_AES_CMAC``, so a master key never leaves it.

Masters are named ``<purpose>.v<version>`` (``master_label``) so keys can roll: a card records
the versions it was written with. The diversification functions at the end turn a master into
the per-card keys; they reproduce ``cards.crypto`` exactly (the tests check it against the
published vectors).
"""

from __future__ import annotations

import abc
import json
import os
import re
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from pki.keys.base import key_directory_check, passphrase_from_env
from pki.keys.errors import KeyBackendError, KeyNotFound

__all__ = [
    "CardKeyStore",
    "Pkcs11CardKeyStore",
    "SoftwareCardKeyStore",
    "admin_key",
    "an10922_key",
    "card_key_store_create",
    "master_label",
    "scp03_card_keys",
    "sealing_key",
]

_LABEL = re.compile(r"[a-z0-9][a-z0-9-]{0,40}\.v[0-9]{1,3}")
AES_KEY_LENGTHS = (16, 24, 32)

SCP03_TYPES = {"enc": 0x01, "mac": 0x02, "dek": 0x03}
"""GP key types of the KDF3-style diversification (cards.crypto.SCP03_DIVERSIFY_*)."""
ADMIN_KDF_CONSTANT = 0x41
"""cards.crypto.UNBLOCK_KDF_CONSTANT: the SP 800-108 constant of the admin key derivation."""


def master_label(purpose: str, version: int) -> str:
    """The store label of a master key: ``<purpose>.v<version>``."""
    label = f"{purpose}.v{version}"
    if _LABEL.fullmatch(label) is None:
        raise KeyBackendError(f"invalid card master key name {label!r}")
    return label


class CardKeyStore(abc.ABC):
    """Holds AES master keys and computes AES-CMAC with them; never returns a master."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    @abc.abstractmethod
    def has_key(self, label: str) -> bool:
        """Whether a master called ``label`` exists."""

    @abc.abstractmethod
    def generate(self, label: str, *, length: int = 16) -> None:
        """Create a random master inside the backend."""

    @abc.abstractmethod
    def import_key(self, label: str, key: bytes) -> None:
        """Store a master handed over at a ceremony (or a published test key)."""

    @abc.abstractmethod
    def cmac(self, label: str, data: bytes) -> bytes:
        """AES-CMAC (16 bytes) of ``data`` under the master ``label``, computed in the backend."""

    def check(self) -> None:  # noqa: B027 - optional hook
        """Raise KeyBackendUnavailable if the store cannot be used now."""

    def wrap_rsa_oaep(self, label: str, public_key: rsa.RSAPublicKey) -> bytes:
        """The master ``label`` encrypted to ``public_key`` (RSA-OAEP, SHA-256): the one way a
        master leaves the store, for a relying party's read key (under dual control)."""
        raise KeyBackendError(
            f"card master {label!r}: store {self.alias!r} does not export masters; "
            "hand it over at a key ceremony"
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} alias={self.alias!r}>"


def _check_label(label: str) -> None:
    if _LABEL.fullmatch(label) is None:
        raise KeyBackendError(f"invalid card master key name {label!r}")


def _check_key(label: str, key: bytes) -> None:
    _check_label(label)
    if len(key) not in AES_KEY_LENGTHS:
        raise KeyBackendError(f"card master {label!r}: an AES key is 16, 24 or 32 bytes")


class SoftwareCardKeyStore(CardKeyStore):
    """Masters as ``<location>/<label>.aes.json``: AES-256-GCM under a scrypt key of the passphrase.

    The passphrase is read from the environment variable whose name is configured, at use time;
    the unwrapped masters stay in this process's memory only.
    """

    SCRYPT_N = 2**15

    def __init__(self, alias: str, *, location: str, passphrase_env: str) -> None:
        super().__init__(alias)
        self.location = Path(location)
        self.passphrase_env = passphrase_env
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def _passphrase(self) -> bytes:
        return passphrase_from_env(self.passphrase_env, owner=f"card key store {self.alias!r}")

    def _path(self, label: str) -> Path:
        if _LABEL.fullmatch(label) is None:
            raise KeyBackendError(f"invalid card master key name {label!r}")
        return self.location / f"{label}.aes.json"

    def _kek(self, salt: bytes) -> bytes:
        kdf = Scrypt(salt=salt, length=32, n=self.SCRYPT_N, r=8, p=1)
        return kdf.derive(self._passphrase())

    def check(self) -> None:
        self._passphrase()
        key_directory_check(self.location, owner=f"card key store {self.alias!r}")

    def has_key(self, label: str) -> bool:
        return self._path(label).exists()

    def generate(self, label: str, *, length: int = 16) -> None:
        self.import_key(label, secrets.token_bytes(length))

    def import_key(self, label: str, key: bytes) -> None:
        _check_key(label, key)
        path = self._path(label)
        self.check()
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        sealed = AESGCM(self._kek(salt)).encrypt(nonce, key, label.encode())
        record = {"format": 1, "salt": salt.hex(), "nonce": nonce.hex(), "sealed": sealed.hex()}
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise KeyBackendError(
                f"a card master {label!r} already exists in store {self.alias!r}"
            ) from None
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh)

    def _key(self, label: str) -> bytes:
        with self._lock:
            key = self._keys.get(label)
            if key is not None:
                return key
            path = self._path(label)
            try:
                record = json.loads(path.read_text())
            except FileNotFoundError:
                raise KeyNotFound(f"no card master {label!r} in store {self.alias!r}") from None
            except (OSError, ValueError):  # unreadable, or not JSON (JSONDecodeError)
                raise KeyBackendError(
                    f"card master {label!r} cannot be read: damaged file {path.name}"
                ) from None
            try:
                key = AESGCM(self._kek(bytes.fromhex(record["salt"]))).decrypt(
                    bytes.fromhex(record["nonce"]), bytes.fromhex(record["sealed"]), label.encode()
                )
            except InvalidTag:
                raise KeyBackendError(
                    f"card master {label!r} cannot be decrypted: wrong passphrase or damaged file"
                ) from None
            except (KeyError, TypeError, ValueError):  # a field missing, not text, not hex
                raise KeyBackendError(
                    f"card master {label!r} cannot be read: damaged file {path.name}"
                ) from None
            self._keys[label] = key
            return key

    def cmac(self, label: str, data: bytes) -> bytes:
        mac = cmac.CMAC(algorithms.AES(self._key(label)))
        mac.update(data)
        return mac.finalize()

    def wrap_rsa_oaep(self, label: str, public_key: rsa.RSAPublicKey) -> bytes:
        oaep = padding.OAEP(
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        )
        return public_key.encrypt(self._key(label), oaep)


class Pkcs11CardKeyStore(CardKeyStore):
    """Masters as AES secret keys on a PKCS#11 token (sensitive, not extractable); the token
    computes ``CKM_AES_CMAC``. Sessions come from a ``pki.keys.pkcs11.Pkcs11KeyBackend`` on the
    same token, so the card masters share the CA keys' login and session pool."""

    def __init__(self, alias: str, **options: Any) -> None:
        super().__init__(alias)
        from pki.keys.pkcs11 import Pkcs11KeyBackend

        self._backend = Pkcs11KeyBackend(alias, **options)
        self._handles: dict[str, Any] = {}

    def check(self) -> None:
        self._backend.check()

    def _template(self, label: str) -> dict[Any, Any]:
        from pkcs11 import Attribute

        return {
            Attribute.LABEL: label,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.VERIFY: True,
            Attribute.ENCRYPT: False,
            Attribute.DECRYPT: False,
            Attribute.WRAP: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }

    def _find(self, session: Any, label: str) -> Any:
        from pkcs11 import KeyType, ObjectClass
        from pkcs11.exceptions import NoSuchKey

        try:
            return session.get_key(
                object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=label
            )
        except NoSuchKey:
            raise KeyNotFound(f"no card master {label!r} on the token of {self.alias!r}") from None

    def has_key(self, label: str) -> bool:
        with self._backend.session() as session:
            try:
                self._find(session, label)
            except KeyNotFound:
                return False
        return True

    def generate(self, label: str, *, length: int = 16) -> None:
        from pkcs11 import KeyType

        _check_label(label)
        if self.has_key(label):
            raise KeyBackendError(f"a card master {label!r} already exists on the token")
        with self._backend.session() as session:
            session.generate_key(
                KeyType.AES, length * 8, store=True, label=label, template=self._template(label)
            )

    def import_key(self, label: str, key: bytes) -> None:
        from pkcs11 import Attribute, KeyType, ObjectClass

        _check_key(label, key)
        if self.has_key(label):
            raise KeyBackendError(f"a card master {label!r} already exists on the token")
        template = self._template(label)
        template.update(
            {
                Attribute.CLASS: ObjectClass.SECRET_KEY,
                Attribute.KEY_TYPE: KeyType.AES,
                Attribute.VALUE: key,
            }
        )
        with self._backend.session() as session:
            session.create_object(template)

    def cmac(self, label: str, data: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11.exceptions import PKCS11Error

        with self._backend.session() as session:
            key = self._find(session, label)
            try:
                return bytes(key.sign(data, mechanism=Mechanism.AES_CMAC))
            except PKCS11Error as exc:
                raise KeyBackendError(
                    f"the token refused AES-CMAC with {label!r}: {type(exc).__name__}"
                ) from None


def card_key_store_create(alias: str, config: Mapping[str, Any]) -> CardKeyStore:
    """A store from ``{"BACKEND": "software"|"pkcs11", "OPTIONS": {...}}``."""
    kind = str(config.get("BACKEND", "software"))
    options = dict(config.get("OPTIONS", {}))
    if kind == "software":
        return SoftwareCardKeyStore(alias, **options)
    if kind == "pkcs11":
        return Pkcs11CardKeyStore(alias, **options)
    raise KeyBackendError(f"unknown card key store backend {kind!r} (software or pkcs11)")


# --- per-card diversification ---------------------------------------------------------------


def scp03_card_keys(
    store: CardKeyStore, label: str, kdd: bytes, *, length: int = 16
) -> dict[str, bytes]:
    """Per-card static SCP03 keys: ``CMAC(master, i ‖ 00 00 00 ‖ type ‖ 00 ‖ KDD)`` (KDF3 style)."""
    if length not in AES_KEY_LENGTHS:
        raise KeyBackendError(f"SCP03 key length {length} is not an AES key length")
    out: dict[str, bytes] = {}
    for name, key_type in SCP03_TYPES.items():
        blocks = b""
        counter = 1
        while len(blocks) < length:
            blocks += store.cmac(label, bytes([counter, 0, 0, 0, key_type, 0]) + kdd)
            counter += 1
        out[name] = blocks[:length]
    return out


def an10922_key(store: CardKeyStore, label: str, m: bytes) -> bytes:
    """AN10922 AES-128 diversified key of input ``M`` (UID ‖ AID ‖ system id).

    AN10922 pads ``01 ‖ M`` to 32 bytes; for 16 ≤ len(M) ≤ 31 that is exactly AES-CMAC, which
    every backend (and every HSM) computes. Shorter inputs would need the raw AES block function
    of the master, which a PKCS#11 CMAC-only key does not offer: they are refused.
    """
    if not 16 <= len(m) <= 31:
        raise KeyBackendError(
            f"AN10922 input of {len(m)} bytes: the card key store needs 16 to 31 bytes "
            "(UID ‖ AID ‖ a system identifier of at least 6 bytes)"
        )
    return store.cmac(label, b"\x01" + m)


def admin_key(store: CardKeyStore, label: str, serial: bytes, key_version: int) -> bytes:
    """The card's admin (offline unblock) key: SP 800-108 CMAC KDF(master, 41, KV ‖ serial)."""
    if not 0 <= key_version <= 0xFF:
        raise KeyBackendError(f"admin key version {key_version} is not one byte")
    fixed = bytes(11) + bytes([ADMIN_KDF_CONSTANT, 0]) + (128).to_bytes(2, "big") + b"\x01"
    return store.cmac(label, fixed + bytes([key_version]) + serial)


def sealing_key(store: CardKeyStore, label: str, context: bytes) -> bytes:
    """A 256-bit AES key for sealing data at rest (session secrets, PIN mailers) bound to
    ``context``; two CMACs of the sealing master with a domain-separating prefix."""
    prefix = b"CPS-CMS-SEAL"
    return b"".join(store.cmac(label, prefix + bytes([i]) + context) for i in (1, 2))
