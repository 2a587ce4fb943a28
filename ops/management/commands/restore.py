"""``manage.py restore ARCHIVE``: onto a freshly created, empty database (ops.backup;
docs/operations.md, "Backup and restore")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.backup import BackupError, backup_restore


class Command(BaseCommand):
    help = (
        "Restore an archive of manage.py backup onto the configured database, which must be "
        "empty, and into the software key stores (a file there must be the archive's copy). "
        "The audit chain must then verify and hold the head recorded in the archive."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", type=Path, help="an archive written by manage.py backup")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            manifest = backup_restore(source=options["archive"])
        except BackupError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"restored the backup of {manifest.created_at}; audit chain intact up to head "
            f"{manifest.audit_head or '(empty chain)'}; CRL numbers "
            + ", ".join(f"{ca} #{n}" for ca, n in sorted(manifest.crl_numbers.items()))
        )
