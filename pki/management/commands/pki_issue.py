"""Issue a certificate from a CSR file with a profile (operators and tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.x509 import load_der_x509_certificate
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.actors import Actor
from pki.domain import names
from pki.domain.extensions import CardType
from pki.management.commands._common import command_errors
from pki.services import certificate_issue


class Command(BaseCommand):
    help = "Issue a certificate from a PKCS#10 CSR."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ca", required=True, help="issuing CA short name")
        parser.add_argument("--profile", required=True)
        parser.add_argument("--csr", required=True, type=Path, help="PEM or DER CSR file")
        parser.add_argument("--out", required=True, type=Path, help="where to write the PEM")
        parser.add_argument("--on-hold", action="store_true", help="issue suspended")
        parser.add_argument("--common-name", help="subject CN (technical profiles)")
        parser.add_argument("--national-id")
        parser.add_argument("--surname")
        parser.add_argument("--given-name")
        parser.add_argument("--title", help="profession label")
        parser.add_argument("--card-serial", help="10 digits")
        parser.add_argument("--profession-code", type=int)
        parser.add_argument("--card-type", type=int, help="0 CPS, 1 CPF, 2 CPE, 3 CPA, 4 CSA")
        parser.add_argument("--email")
        parser.add_argument("--organisation")
        parser.add_argument("--organisation-unit")
        parser.add_argument("--state")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            csr = options["csr"].read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read CSR: {exc.strerror}") from None
        with command_errors():
            try:
                holder = holder_from_options(options)
            except ValueError as exc:
                raise CommandError(f"bad holder option: {exc}") from None
            cert = certificate_issue(
                authority=options["ca"],
                profile=options["profile"],
                csr=csr,
                holder=holder,
                common_name=options["common_name"],
                on_hold=options["on_hold"],
                actor=Actor.system("pki_issue"),
            )
        x509_cert = load_der_x509_certificate(bytes(cert.der))
        options["out"].write_bytes(x509_cert.public_bytes(serialization.Encoding.PEM))
        self.stdout.write(f"issued serial {int(cert.serial):x} ({cert.status}) -> {options['out']}")


def holder_from_options(options: dict[str, object]) -> names.Holder | None:
    """Holder fields given on a command line (``None`` when none were given)."""
    keys = ("national_id", "surname", "given_name", "title", "card_serial")
    if not any(options.get(k) for k in keys):
        return None
    profession = options.get("profession_code")
    card_type = options.get("card_type")
    return names.Holder(
        national_id=str(options.get("national_id") or ""),
        surname=str(options.get("surname") or ""),
        given_name=str(options.get("given_name") or ""),
        title=str(options.get("title") or ""),
        card_serial=str(options.get("card_serial") or ""),
        profession_code=int(str(profession)) if profession is not None else None,
        card_type=CardType(int(str(card_type))) if card_type is not None else CardType.CPS,
        email=str(options["email"]) if options.get("email") else None,
        organisation=str(options["organisation"]) if options.get("organisation") else None,
        organisation_unit=(
            str(options["organisation_unit"]) if options.get("organisation_unit") else None
        ),
        state=str(options["state"]) if options.get("state") else None,
    )
