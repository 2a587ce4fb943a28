"""Revoke, hold or release a certificate by issuer and serial."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.actors import Actor
from pki import selectors, services
from pki.domain.reasons import REVOKE_REASONS, RevocationReason
from pki.management.commands._common import command_errors


class Command(BaseCommand):
    help = "Revoke a certificate, or put it on hold / release its hold."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ca", required=True, help="issuing CA short name")
        parser.add_argument("--serial", required=True, help="decimal, 0x-hex or colon hex")
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--reason", choices=sorted(r.value for r in REVOKE_REASONS))
        action.add_argument("--hold", action="store_true")
        action.add_argument("--release", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system("pki_revoke")
        with command_errors():
            serial = selectors.serial_parse(options["serial"])
            cert = selectors.certificate_get_by_serial(authority=options["ca"], serial=serial)
            if options["hold"]:
                cert = services.certificate_hold(certificate_id=cert.pk, actor=actor)
            elif options["release"]:
                cert = services.certificate_release_hold(certificate_id=cert.pk, actor=actor)
            else:
                reason = RevocationReason(options["reason"])
                cert = services.certificate_revoke(
                    certificate_id=cert.pk, reason=reason, actor=actor
                )
        if cert is None:
            raise CommandError("no certificate")
        self.stdout.write(f"{serial:x}: {cert.status}")
