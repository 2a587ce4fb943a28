"""Write the CPS3 reconciliation's exceptions report as CSV."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from cps3.inventory import exceptions_csv


class Command(BaseCommand):
    help = "Write the current exceptions report (CSV, UTF-8) to a file or standard output."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, help="file to write (default: standard output)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["output"]:
            with Path(options["output"]).open("w", encoding="utf-8", newline="") as out:
                count = exceptions_csv(out)
            self.stderr.write(f"{count} exceptions written to {options['output']}")
        else:
            exceptions_csv(sys.stdout)
