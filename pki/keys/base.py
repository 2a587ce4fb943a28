"""The key backend interface, and the registry built from ``PKI_KEY_BACKENDS``.

Configured like Django's ``STORAGES``::

    PKI_KEY_BACKENDS = {
        "software": {"BACKEND": "pki.keys.software.SoftwareKeyBackend",
                     "OPTIONS": {"location": "...", "passphrase_env": "PKI_KEY_PASSPHRASE"}},
        "hsm": {"BACKEND": "pki.keys.pkcs11.Pkcs11KeyBackend",
                "OPTIONS": {"token_label": "pki", "pin_env": "PKI_HSM_PIN"}},
    }
"""

from __future__ import annotations

import abc
import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from pki.keys.errors import KeyBackendError, KeyBackendUnavailable


def passphrase_from_env(variable: str, *, owner: str) -> bytes:
    """The passphrase in the environment variable ``variable``; if absent, say what to set."""
    value = os.environ.get(variable)
    if not value:
        raise KeyBackendUnavailable(
            f"{owner}: set the environment variable {variable} to the key passphrase"
        )
    return value.encode("utf-8")


def key_directory_check(location: Path, *, owner: str) -> None:
    """Create the key directory (owner-only) if needed; an unusable one makes the backend down."""
    try:
        location.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise KeyBackendUnavailable(f"{owner}: directory {location}: {exc.strerror}") from None


class KeyBackend(abc.ABC):
    """Holds private keys; hands out objects that sign but never reveal them."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    @abc.abstractmethod
    def generate_rsa(self, *, label: str, key_size: int) -> str:
        """Create an RSA key pair named ``label``; return its handle (what a CA row stores)."""

    @abc.abstractmethod
    def private_key(self, handle: str) -> rsa.RSAPrivateKey:
        """A key object usable by cryptography's builders, signing inside the backend."""

    @abc.abstractmethod
    def has_key(self, handle: str) -> bool:
        """Whether a key with this handle exists."""

    def handle_for(self, label: str) -> str:
        """The handle :meth:`generate_rsa` returns for ``label``."""
        return label

    def check(self) -> None:  # noqa: B027 - optional hook
        """Raise :class:`KeyBackendUnavailable` if the backend cannot be used now."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions or handles."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} alias={self.alias!r}>"


def _import(dotted: str) -> type[KeyBackend]:
    module_name, _, attr = dotted.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise KeyBackendError(f"cannot import key backend {dotted!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, KeyBackend)):
        raise KeyBackendError(f"{dotted!r} is not a KeyBackend")
    return cls


def backend_create(alias: str, config: Mapping[str, Mapping[str, Any]]) -> KeyBackend:
    """Instantiate the backend called ``alias`` from a ``PKI_KEY_BACKENDS``-like mapping."""
    try:
        entry = config[alias]
    except KeyError:
        known = ", ".join(sorted(config)) or "none"
        raise KeyBackendError(f"no key backend {alias!r} configured (known: {known})") from None
    cls = _import(str(entry["BACKEND"]))
    options = dict(entry.get("OPTIONS", {}))
    return cls(alias, **options)
