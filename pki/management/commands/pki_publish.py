"""Publish CRLs (full, and delta for issuing CAs) and pre-sign OCSP answers."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.actors import Actor
from pki.management.commands._common import command_errors
from pki.tasks import pki_publish_all


class Command(BaseCommand):
    help = "Sign and store CRLs and delta CRLs, and refresh every pre-signed OCSP response."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ca", help="only this CA (short name)")
        parser.add_argument("--no-ocsp", action="store_true", help="skip OCSP pre-signing")

    def handle(self, *args: Any, **options: Any) -> None:
        with command_errors():
            lines = pki_publish_all(
                actor=Actor.system("pki_publish"),
                authority=options["ca"],
                ocsp=not options["no_ocsp"],
            )
        for line in lines:
            self.stdout.write(line)
