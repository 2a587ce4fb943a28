from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks


def _profiles_check(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """A broken certificate profile table must stop every process at start-up."""
    from pki.domain.errors import ProfileViolation
    from pki.domain.profiles import validate_profiles

    try:
        validate_profiles()
    except ProfileViolation as exc:
        return [checks.Critical(f"certificate profiles: {exc}", id="pki.E001")]
    return []


class PkiConfig(AppConfig):
    name = "pki"
    verbose_name = "PKI"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        checks.register(_profiles_check, checks.Tags.security)
        from pki import acts  # noqa: F401 - registers the PKI's dual-control acts
