from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operating the system: backup and restore, Prometheus metrics, logging (ADR 0015)."""

    name = "ops"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"
