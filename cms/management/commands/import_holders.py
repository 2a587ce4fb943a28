"""Import holders from an RPPS-style directory extract (CSV), printing the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cms.callers import Caller
from cms.services.holder_import import holder_import
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Upsert holders from a directory extract (CSV); rejected rows go to the report."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--rejected", type=Path, help="write rejected rows here (JSON lines)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = holder_import(
                content=options["path"].read_bytes(), caller=Caller.for_system("import_holders")
            )
        except (OSError, ApplicationError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"rows {report.total}: created {report.created}, updated {report.updated}, "
            f"unchanged {report.unchanged}, rejected {len(report.rejected)}, "
            f"cards revoked {report.cards_revoked}, requests cancelled {report.requests_cancelled} "
            f"(sha256 {report.sha256})"
        )
        if options["rejected"]:
            with options["rejected"].open("w", encoding="utf-8") as out:
                for row in report.rejected:
                    line = {"line": row.line, "national_id": row.national_id, "errors": row.errors}
                    out.write(json.dumps(line, ensure_ascii=False) + "\n")
