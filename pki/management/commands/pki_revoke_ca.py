"""Revoke an issuing CA, with two authenticated security officers (dual control), then publish
its parent's CRLs listing it. The same act through the API: ``pki.authority_revoke``
(``/api/v1/dual-control/acts``)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.actors import Actor
from core.cli_auth import officers_authenticate
from pki import services
from pki.domain.reasons import REVOKE_REASONS, RevocationReason
from pki.management.commands._common import command_errors


class Command(BaseCommand):
    help = (
        "Revoke an issuing CA: two different security officers (--officer twice) type their "
        "passwords; the parent's CRLs are published at once."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ca", required=True, help="short name of the issuing CA")
        parser.add_argument(
            "--reason", required=True, choices=sorted(r.value for r in REVOKE_REASONS)
        )
        parser.add_argument("--officer", action="append", default=[], required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        with command_errors():
            people = officers_authenticate(
                usernames=options["officer"], count=2, stdin=options.get("stdin") or sys.stdin
            )
            officers = [p.get_username() for p in people]
            cert = services.authority_revoke(
                authority=options["ca"],
                reason=RevocationReason(options["reason"]),
                actor=Actor.for_user(people[0]),
                officers=officers,
            )
            parent = services.authority_parent_crls_publish(
                authority=options["ca"], actor=Actor.for_user(people[0])
            )
        self.stdout.write(
            f"{options['ca']} revoked (serial {int(cert.serial):x}); {parent} CRLs published"
        )
