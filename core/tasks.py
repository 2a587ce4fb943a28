"""Periodic integrity check of the audit chain; its result is itself an audit event."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction

from core.actors import Actor
from core.audit import audit_chain_verify, audit_event_create

logger = logging.getLogger(__name__)


def audit_chain_check() -> dict[str, object]:
    """Verify the chain and record the outcome (and the head, an anchor for the next check)."""
    report = audit_chain_verify()
    details: dict[str, object] = {
        "checked": report.checked,
        "head_seq": report.head_seq,
        "head_hash": report.head_hash,
        "ok": report.ok,
    }
    if report.first_break is not None:
        details["break_seq"] = report.first_break.seq
        details["break_reason"] = report.first_break.reason
        logger.error("%s", report.first_break)
    with transaction.atomic():
        audit_event_create(
            actor=Actor.system("audit_chain_check"),
            action="audit.verify",
            object_type="audit_chain",
            object_id="main",
            details=details,
        )
    return details


@shared_task(acks_late=True, ignore_result=True)
def audit_chain_check_task() -> None:
    audit_chain_check()
