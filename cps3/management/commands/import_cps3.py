"""Import the CPS3 inventory from the legacy export (docs/migration.md), with a progress bar."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.actors import Actor
from core.errors import ApplicationError
from cps3.inventory import ENCODINGS, cps3_import


class _Bar:
    """A progress bar on stderr when it is a terminal; a line every 10 % otherwise."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.tty = sys.stderr.isatty()
        self.shown = -1
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        percent = min(100, done * 100 // self.total)
        step = percent if self.tty else percent - percent % 10
        if step == self.shown:
            return
        self.shown = step
        width = 30
        filled = width * percent // 100
        rate = done / max(time.monotonic() - self.started, 1e-6) / 1e6
        text = f"[{'#' * filled}{'.' * (width - filled)}] {percent:3d} %  {rate:6.1f} MB/s"
        sys.stderr.write(("\r" + text) if self.tty else (text + "\n"))
        sys.stderr.flush()


class Command(BaseCommand):
    help = "Import the CPS3 inventory (CSV export) and bring the exceptions report up to date."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--encoding", choices=sorted(ENCODINGS), default="utf-8")
        parser.add_argument("--quiet-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        try:
            size = path.stat().st_size
            with path.open("rb") as stream:
                result = cps3_import(
                    stream=stream,
                    filename=path.name,
                    size=size,
                    actor=Actor.system("import_cps3"),
                    encoding=options["encoding"],
                    progress=None if options["quiet_progress"] else _Bar(size),
                )
        except ApplicationError as exc:
            details = "; ".join(f"{k}: {v}" for k, v in exc.extra.items() if v)
            raise CommandError(f"{exc.message}{f' ({details})' if details else ''}") from exc
        except OSError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if not options["quiet_progress"] and sys.stderr.isatty():
                sys.stderr.write("\n")
        self.stdout.write(
            f"import #{result.import_id}: {result.rows} rows, {result.inserted} new, "
            f"{result.updated} updated, {result.unchanged} unchanged, {result.rejected} rejected; "
            f"{result.exceptions} exceptions (manage.py cps3_exceptions writes the report)"
        )
