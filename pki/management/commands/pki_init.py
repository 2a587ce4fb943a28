"""Key ceremony: create the configured CA hierarchy. A second run changes nothing.

A test hierarchy (``test = true``: the embedded default of ``make run``, the demo and the tests;
its card certificates carry the test product category) is created unattended. Any other
hierarchy is a real CA ceremony: two different security officers name themselves with
``--officer`` and type their passwords (one line each on standard input when it is not a
terminal); the ceremony is audited with both names.
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.actors import Actor
from core.cli_auth import officers_authenticate
from pki.hierarchy import HierarchyConfigError, hierarchy_load
from pki.keys.errors import KeyBackendError
from pki.management.commands._common import command_errors
from pki.services import hierarchy_init

CEREMONY_OFFICERS = 2


class Command(BaseCommand):
    help = (
        "Create the CA hierarchy of a configuration file (idempotent). A hierarchy that is not a "
        "test one needs two security officers: --officer alice --officer bob."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--config", default=settings.PKI_HIERARCHY_FILE, help="TOML file")
        parser.add_argument(
            "--backend",
            default=settings.PKI_DEFAULT_KEY_BACKEND,
            help="key backend alias of PKI_KEY_BACKENDS for new CA keys",
        )
        parser.add_argument(
            "--officer",
            action="append",
            default=[],
            help="a security officer present at the ceremony (twice: two different people)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["backend"] not in settings.PKI_KEY_BACKENDS:
            known = ", ".join(sorted(settings.PKI_KEY_BACKENDS))
            raise CommandError(f"unknown key backend {options['backend']!r} (known: {known})")
        try:
            config = hierarchy_load(options["config"])
        except HierarchyConfigError as exc:
            raise CommandError(str(exc)) from None
        actor = Actor.system("pki_init")
        officers: list[str] = []
        if not config.test:
            with command_errors():
                people = officers_authenticate(
                    usernames=options["officer"],
                    count=CEREMONY_OFFICERS,
                    stdin=options.get("stdin") or sys.stdin,
                )
            actor = Actor.for_user(people[0])
            officers = [p.get_username() for p in people]
        with command_errors():
            try:
                created = hierarchy_init(
                    config=config, backend=options["backend"], actor=actor, officers=officers
                )
            except KeyBackendError as exc:
                raise CommandError(str(exc)) from None
        if not created:
            self.stdout.write("hierarchy already complete: nothing changed")
        for item in created:
            self.stdout.write(f"created {item}")
