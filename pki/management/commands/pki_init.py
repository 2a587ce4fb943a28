"""Key ceremony: create the configured CA hierarchy. A second run changes nothing."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.actors import Actor
from pki.hierarchy import HierarchyConfigError, hierarchy_load
from pki.keys.errors import KeyBackendError
from pki.management.commands._common import command_errors
from pki.services import hierarchy_init


class Command(BaseCommand):
    help = "Create the CA hierarchy of a configuration file (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--config", default=settings.PKI_HIERARCHY_FILE, help="TOML file")
        parser.add_argument(
            "--backend",
            default=settings.PKI_DEFAULT_KEY_BACKEND,
            help="key backend alias of PKI_KEY_BACKENDS for new CA keys",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["backend"] not in settings.PKI_KEY_BACKENDS:
            known = ", ".join(sorted(settings.PKI_KEY_BACKENDS))
            raise CommandError(f"unknown key backend {options['backend']!r} (known: {known})")
        try:
            config = hierarchy_load(options["config"])
        except HierarchyConfigError as exc:
            raise CommandError(str(exc)) from None
        with command_errors():
            try:
                created = hierarchy_init(
                    config=config, backend=options["backend"], actor=Actor.system("pki_init")
                )
            except KeyBackendError as exc:
                raise CommandError(str(exc)) from None
        if not created:
            self.stdout.write("hierarchy already complete: nothing changed")
        for item in created:
            self.stdout.write(f"created {item}")
