"""Sign the audit chain head with the audit key and publish it now (the beat task does it every
AUDIT_ANCHOR_INTERVAL_SECONDS)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from core.actors import Actor
from pki import services
from pki.management.commands._common import command_errors
from pki.services.anchor import ANCHOR_FILE, anchor_dir


class Command(BaseCommand):
    help = "Sign the audit chain head with the audit key; publish it (file and URL)."

    def handle(self, *args: Any, **options: Any) -> None:
        with command_errors():
            anchor = services.audit_anchor_sign(actor=Actor.system("audit_anchor"))
        self.stdout.write(
            f"anchored head {anchor.seq}:{anchor.head_hash} -> {anchor_dir() / ANCHOR_FILE}"
        )
