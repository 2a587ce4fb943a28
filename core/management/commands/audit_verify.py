from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.anchor import anchor_verify
from core.audit import audit_chain_verify
from core.models import AuditEvent


class Command(BaseCommand):
    help = (
        "Walk the audit chain and report the first broken or missing link; exit status 1 on any "
        "break. Record the printed head (seq:hash) outside the database and pass it back with "
        "--expect-head to detect a rewritten tail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--expect-head",
            metavar="SEQ:HASH",
            help="a head recorded earlier: the chain must still contain it unchanged",
        )
        parser.add_argument(
            "--anchor",
            metavar="FILE_OR_URL",
            help="a signed anchor (audit-anchor.json, file or http(s) URL) kept outside the "
            "database: its signature must verify and the chain must still contain its head",
        )
        parser.add_argument(
            "--anchor-key",
            metavar="PEM",
            help="the audit public key to require (default: the key the anchor carries)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_chain_verify()
        if report.first_break is not None:
            raise CommandError(str(report.first_break), returncode=1)
        expect = options.get("expect_head")
        if expect:
            self._check_anchor(expect)
        if options.get("anchor"):
            self._check_signed_anchor(options["anchor"], options.get("anchor_key"))
        self.stdout.write(
            f"audit chain intact: {report.checked} events, "
            f"head {report.head_seq}:{report.head_hash}"
        )

    def _check_signed_anchor(self, source: str, key_file: str | None) -> None:
        try:
            if source.startswith(("http://", "https://")):
                with urllib.request.urlopen(source, timeout=30) as reply:  # noqa: S310
                    raw = reply.read()
            else:
                raw = Path(source).read_bytes()
            document = json.loads(raw)
            pinned = Path(key_file).read_bytes() if key_file else None
            anchor = anchor_verify(document, public_key_pem=pinned)
        except (OSError, ValueError) as exc:
            raise CommandError(f"audit anchor refused: {exc}", returncode=1) from None
        self._check_anchor(f"{anchor.seq}:{anchor.hash}")
        self.stdout.write(
            f"signed anchor verified: head {anchor.seq}:{anchor.hash} signed {anchor.signed_at} "
            f"by key sha256 {anchor.key_sha256}"
        )

    def _check_anchor(self, expect: str) -> None:
        seq_text, _, expected_hash = expect.partition(":")
        if not seq_text.isdigit() or len(expected_hash) != 64:
            raise CommandError("--expect-head must be SEQ:HASH as printed by audit_verify")
        stored = AuditEvent.objects.filter(seq=int(seq_text)).values_list("hash", flat=True).first()
        if stored != expected_hash:
            raise CommandError(
                f"audit chain broken at event #{seq_text}: it no longer matches the recorded head",
                returncode=1,
            )
