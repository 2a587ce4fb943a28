from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

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

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_chain_verify()
        if report.first_break is not None:
            raise CommandError(str(report.first_break), returncode=1)
        expect = options.get("expect_head")
        if expect:
            self._check_anchor(expect)
        self.stdout.write(
            f"audit chain intact: {report.checked} events, "
            f"head {report.head_seq}:{report.head_hash}"
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
