"""Print the generated role tables of docs/roles.md (between its markers)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from api.roles_table import markdown


class Command(BaseCommand):
    help = "Print the role tables (transitions, requests, endpoints) that docs/roles.md holds."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(markdown(), ending="")
