"""``manage.py deny_list_publish [--force]``: what the beat task does, now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from cms.contactless.services import deny_list_publish
from core.actors import Actor


class Command(BaseCommand):
    help = "Publish the signed contactless deny list (full and delta) when due, or now (--force)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="publish a new version now")

    def handle(self, *args: Any, **options: Any) -> None:
        done = deny_list_publish(actor=Actor.system("deny_list_publish"), force=options["force"])
        if done is None:
            self.stdout.write("deny list: nothing due")
        else:
            self.stdout.write(
                f"deny list: version {done.version} ({done.entries} entries, "
                f"{done.changes} changes)"
            )
