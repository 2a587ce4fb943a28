"""Write a synthetic CPS3 export (and the matching registry extract), deterministic from a seed."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from cps3.generator import Export, Rates, export_rows, holder_rows


class Command(BaseCommand):
    help = (
        "Write a synthetic CPS3 export of N records to PATH and, with --holders, the registry "
        "extract naming the same professionals (for import_holders)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("count", type=int)
        parser.add_argument("path", type=Path)
        parser.add_argument("--holders", type=Path, help="write the registry extract here")
        parser.add_argument("--seed", type=int, default=1)
        for name in Rates.__dataclass_fields__:
            parser.add_argument(
                f"--rate-{name.replace('_', '-')}",
                type=float,
                default=getattr(Rates(), name),
                help=f"share of records showing {name} (default %(default)s)",
            )

    def handle(self, *args: Any, **options: Any) -> None:
        rates = Rates(**{name: options[f"rate_{name}"] for name in Rates.__dataclass_fields__})
        report = Export()
        with options["path"].open("w", encoding="utf-8", newline="") as out:
            csv.writer(out).writerows(
                export_rows(options["count"], seed=options["seed"], rates=rates, report=report)
            )
        if options["holders"]:
            with options["holders"].open("w", encoding="utf-8", newline="") as out:
                csv.writer(out).writerows(
                    holder_rows(options["count"], seed=options["seed"], rates=rates)
                )
        anomalies = ", ".join(f"{k} {v}" for k, v in sorted(report.anomalies.items()))
        self.stdout.write(f"{report.records} rows written; anomalies: {anomalies or 'none'}")
