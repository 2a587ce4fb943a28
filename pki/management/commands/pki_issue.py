"""Issue a certificate of a technical profile from a CSR file, for an authenticated officer.

Personal profiles (``cps_auth``, ``cps_sign``) are never issued from here: a holder's identity
typed on a command line is tied to no card and approved by nobody. They come only from the
personalization of a registry card, or from a request a second person approved. Responder
certificates come only from the responder installer (``pki_init``, renewal).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.x509 import load_der_x509_certificate
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.actors import Actor
from core.cli_auth import officer_authenticate
from pki.domain.errors import ProfileViolation
from pki.domain.profiles import profile_get
from pki.management.commands._common import command_errors
from pki.services import certificate_issue


class Command(BaseCommand):
    help = (
        "Issue a certificate of a technical profile from a PKCS#10 CSR; the officer named with "
        "--officer types their password (one line on standard input when it is not a terminal)."
    )

    stealth_options = ("stdin",)  # tests and scripts give the password lines as a stream

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ca", required=True, help="issuing CA short name")
        parser.add_argument("--profile", required=True, help="a technical profile of that CA")
        parser.add_argument("--csr", required=True, type=Path, help="PEM or DER CSR file")
        parser.add_argument("--out", required=True, type=Path, help="where to write the PEM")
        parser.add_argument(
            "--officer", required=True, help="username of the security officer who issues it"
        )
        parser.add_argument("--on-hold", action="store_true", help="issue suspended")
        parser.add_argument("--common-name", help="subject CN (default: the CSR's)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            profile = profile_get(options["profile"])
        except ProfileViolation as exc:
            raise CommandError(str(exc)) from None
        if profile.holder_required:
            raise CommandError(
                f"profile {profile.name} is personal: it is issued only for a registry card in "
                "personalization or through a request approved by a second person, never from "
                "a command line"
            )
        try:
            csr = options["csr"].read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read CSR: {exc.strerror}") from None
        stdin = options.get("stdin") or sys.stdin
        with command_errors():
            officer = officer_authenticate(username=options["officer"], stdin=stdin)
            cert = certificate_issue(
                authority=options["ca"],
                profile=profile.name,
                csr=csr,
                common_name=options["common_name"],
                on_hold=options["on_hold"],
                actor=Actor.for_user(officer),
            )
        x509_cert = load_der_x509_certificate(bytes(cert.der))
        options["out"].write_bytes(x509_cert.public_bytes(serialization.Encoding.PEM))
        self.stdout.write(f"issued serial {int(cert.serial):x} ({cert.status}) -> {options['out']}")
