"""``manage.py card_keys_import_transport --version N < master.hex``: store a card vendor's
DESFire transport master of version N in the card key store (``desfire-transport.vN``).

The key is read from stdin (32 hex digits), never from the command line, so it stays out of
``ps`` listings and shell history. Version 0 is the factory key (zeros) and is not imported. An
existing master is never replaced. The import is audited (label and version, never the key).
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from cms.callers import Caller
from cms.personalization.keys import transport_master_import
from core.audit import audit_event_create
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Import a DESFire transport master key (hex on stdin) into the card key store."
    stealth_options = ("stdin",)

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # Django's own --version (print Django's version) gives way to the key version.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--version", type=int, required=True, help="transport key version (1-255)"
        )
        parser.add_argument("--officer", default="card_keys_import_transport", help="for the audit")

    def handle(self, *args: Any, **options: Any) -> None:
        stdin = options.get("stdin") or sys.stdin
        text = stdin.readline().strip().replace(" ", "")
        try:
            key = bytes.fromhex(text)
        except ValueError:
            raise CommandError("stdin must carry the key as hex digits (32 for AES-128)") from None
        caller = Caller.for_system(f"card_keys_import_transport ({options['officer']})")
        try:
            with transaction.atomic():
                label = transport_master_import(version=options["version"], key=key)
                audit_event_create(
                    actor=caller.actor,
                    action="card_keys.transport_import",
                    object_type="card_key",
                    object_id=label,
                    details={"version": options["version"]},
                )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"imported {label}")
