from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Audit log, roles, actors and application errors: the layer every other app builds on."""

    name = "core"
    verbose_name = "Core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core import signals  # noqa: F401 - connects the role and sign-in guards
