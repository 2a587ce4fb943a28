from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.actors import Actor
from core.errors import ApplicationError
from core.roles import Role
from core.users import user_create, user_grant_role

ROLE_NAMES = [role.value for role in Role]


class Command(BaseCommand):
    help = (
        "Grant a role to an account, creating the account first with --create (its password is "
        "printed once). Roles: " + ", ".join(ROLE_NAMES)
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("role", choices=ROLE_NAMES)
        parser.add_argument("--create", action="store_true", help="create the account if absent")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system("grant_role")
        role = Role(options["role"])
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            if not options["create"]:
                raise CommandError(f"no account {options['username']!r} (add --create to make it)")
            user, password = user_create(username=options["username"], actor=actor)
            self.stdout.write(f"account {user.username!r} created; password: {password}")
            self.stdout.write("this password is shown once: store it now")
        try:
            user_grant_role(user=user, role=role, actor=actor)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{user.username!r} holds the role {role.value}")
