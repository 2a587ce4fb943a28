"""Errors of the key backends. Messages never carry a PIN, passphrase or key bytes."""

from __future__ import annotations


class KeyBackendError(Exception):
    """A key backend refused an operation for a reason retrying will not fix."""


class KeyBackendUnavailable(KeyBackendError):
    """The backend cannot be reached or unlocked right now (HSM down, secret missing)."""


class KeyNotFound(KeyBackendError):
    """No key with this handle in the backend."""
