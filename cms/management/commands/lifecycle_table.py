"""Print the card lifecycle table (Markdown); docs/lifecycle.md is this output."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from cms.lifecycle import markdown_table


class Command(BaseCommand):
    help = "Print the card lifecycle table as Markdown (docs/lifecycle.md is generated from it)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(markdown_table(), ending="")
