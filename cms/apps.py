from django.apps import AppConfig


class CmsConfig(AppConfig):
    name = "cms"
    verbose_name = "Card management"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the dual-control act of bulk revocations (core.dual_control).
        from cms.services import bulk_revocation  # noqa: F401
