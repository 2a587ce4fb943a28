"""Publish CRLs (full, and delta for issuing CAs), pre-sign OCSP answers, renew responder
certificates near expiry."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.actors import Actor
from pki.management.commands._common import command_errors
from pki.services import pki_publish_all


class Command(BaseCommand):
    help = "Sign and store CRLs and delta CRLs, and refresh every pre-signed OCSP response."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ca", help="only this CA (short name)")
        parser.add_argument("--no-ocsp", action="store_true", help="skip OCSP pre-signing")
        parser.add_argument(
            "--due",
            action="store_true",
            help="only what is due (what the beat task does): CRLs per the configured "
            "intervals, OCSP answers missing or near their nextUpdate",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with command_errors():
            lines = pki_publish_all(
                actor=Actor.system("pki_publish"),
                authority=options["ca"],
                ocsp=not options["no_ocsp"],
                due_only=options["due"],
            )
        for line in lines:
            self.stdout.write(line)
