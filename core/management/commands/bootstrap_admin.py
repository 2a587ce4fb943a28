from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.users import user_bootstrap_admin


class Command(BaseCommand):
    help = (
        "Create the first administrator (security officer only) once; its password is printed "
        "once. Other roles go to other accounts (grant_role)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, **options: Any) -> None:
        user, password = user_bootstrap_admin(username=options["username"])
        if password is None:
            self.stdout.write(
                f"administrator {user.username!r} already exists (password unchanged)"
            )
            return
        # Shown once, on the terminal of the operator who ran the command; never logged.
        self.stdout.write(f"administrator {user.username!r} created; password: {password}")
        self.stdout.write("this password is shown once: store it now")
