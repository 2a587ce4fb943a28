from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "REST API"

    def ready(self) -> None:
        # Registers the OpenAPI extension of the token authentication.
        from api import schema  # noqa: F401

        # Drops remembered token lookups on every revocation or role change.
        from api.auth_cache import connect

        connect()
