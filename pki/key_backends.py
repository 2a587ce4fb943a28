"""Key backends configured in ``settings.PKI_KEY_BACKENDS``, one instance per alias and process."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from pki.keys.base import KeyBackend, backend_create

_instances: dict[str, KeyBackend] = {}


def key_backend_get(alias: str) -> KeyBackend:
    """The backend for ``alias`` (created on first use, then kept: it pools sessions)."""
    backend = _instances.get(alias)
    if backend is None:
        backend = backend_create(alias, settings.PKI_KEY_BACKENDS)
        _instances[alias] = backend
    return backend


@receiver(setting_changed)
def _reset_on_settings_change(*, setting: str, **kwargs: Any) -> None:
    # cache invalidation only (tests override the setting)
    if setting == "PKI_KEY_BACKENDS":
        for backend in _instances.values():
            backend.close()
        _instances.clear()
