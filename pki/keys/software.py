"""Software key backend: encrypted PKCS#8 PEM files in a directory.

The passphrase is read from the environment variable whose *name* is configured, at use time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pki.keys.base import KeyBackend, key_directory_check, passphrase_from_env
from pki.keys.errors import KeyBackendError, KeyBackendUnavailable, KeyNotFound

_HANDLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class SoftwareKeyBackend(KeyBackend):
    """Keys as ``<location>/<handle>.p8.pem``, each encrypted under the passphrase."""

    def __init__(self, alias: str, *, location: str, passphrase_env: str) -> None:
        super().__init__(alias)
        self.location = Path(location)
        self.passphrase_env = passphrase_env
        # Decrypting PKCS#8 costs a key derivation: keep unlocked keys for the process lifetime.
        self._cache: dict[str, rsa.RSAPrivateKey] = {}

    def _passphrase(self) -> bytes:
        return passphrase_from_env(self.passphrase_env, owner=f"key backend {self.alias!r}")

    def _path(self, handle: str) -> Path:
        if _HANDLE.fullmatch(handle) is None:
            raise KeyBackendError(f"invalid key handle {handle!r}")
        return self.location / f"{handle}.p8.pem"

    def check(self) -> None:
        self._passphrase()
        key_directory_check(self.location, owner=f"key backend {self.alias!r}")

    def has_key(self, handle: str) -> bool:
        return self._path(handle).exists()

    def generate_rsa(self, *, label: str, key_size: int) -> str:
        passphrase = self._passphrase()
        path = self._path(label)
        if path.exists():
            raise KeyBackendError(f"a key {label!r} already exists in backend {self.alias!r}")
        self.location.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        return label

    def private_key(self, handle: str) -> rsa.RSAPrivateKey:
        cached = self._cache.get(handle)
        if cached is not None:
            return cached
        path = self._path(handle)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise KeyNotFound(f"no key {handle!r} in backend {self.alias!r}") from None
        except OSError as exc:
            raise KeyBackendUnavailable(f"key backend {self.alias!r}: {exc.strerror}") from None
        try:
            key = serialization.load_pem_private_key(data, password=self._passphrase())
        except ValueError:
            raise KeyBackendUnavailable(
                f"key backend {self.alias!r}: cannot decrypt key {handle!r} "
                f"(wrong passphrase in {self.passphrase_env}?)"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyBackendError(f"key {handle!r} is not an RSA key")
        self._cache[handle] = key
        return key

    def close(self) -> None:
        self._cache.clear()
