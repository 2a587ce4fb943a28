"""``manage.py backup ARCHIVE``: the database and the software key stores in one archive
(ops.backup; docs/operations.md, "Backup and restore")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.backup import BackupError, backup_create


class Command(BaseCommand):
    help = (
        "Back up the database (pg_dump) and the software key stores (CA, OCSP and card master "
        "keys) into a new tar archive, mode 600. Passphrases are never in it: keep them apart."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", type=Path, help="the archive to write (must not exist)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            manifest = backup_create(target=options["archive"])
        except BackupError as exc:
            raise CommandError(exc.message) from None
        keys = len(manifest.files) - 1
        self.stdout.write(
            f"backup written to {options['archive']}: database and {keys} key files; "
            f"audit head {manifest.audit_head or '(empty chain)'}"
        )
