from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Operator console"

    def ready(self) -> None:
        # The admin site's sign-in gets the console's failed-attempt limit too.
        from django.contrib import admin

        from console.login_limit import LimitedAdminAuthenticationForm

        admin.site.login_form = LimitedAdminAuthenticationForm
