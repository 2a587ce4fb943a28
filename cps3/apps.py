from django.apps import AppConfig


class Cps3Config(AppConfig):
    """The CPS3 inventory and the CPS3 → CPS4 migration (DESIGN.md §7, last item)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "cps3"
    verbose_name = "CPS3 → CPS4 migration"

    def ready(self) -> None:
        from cps3 import waves  # noqa: F401 - registers the wave launch's dual-control act
