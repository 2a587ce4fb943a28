"""Periodic integrity check of the audit chain; its result is itself an audit event.

A delivery may come twice (acks_late: the broker restarted, or the worker died, after the work
and before the acknowledgement). The event names the task id, and a second delivery of the same
task finds it and records nothing (ADR 0020)."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.db import connection, transaction

from core.actors import Actor
from core.audit import audit_chain_verify, audit_event_create
from core.models import AuditEvent

logger = logging.getLogger(__name__)


def audit_chain_check(task_id: str | None = None) -> dict[str, object] | None:
    """Verify the chain and record the outcome (and the head, an anchor for the next check).
    With ``task_id``, once per task: None if that task's outcome is recorded already."""
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
    if task_id is not None:
        details["task"] = task_id
    with transaction.atomic():
        if task_id is not None:
            with connection.cursor() as cursor:  # two deliveries at once: one waits here
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"task:{task_id}"])
            if AuditEvent.objects.filter(action="audit.verify", details__task=task_id).exists():
                logger.info("audit check task %s delivered again: already recorded", task_id)
                return None
        audit_event_create(
            actor=Actor.system("audit_chain_check"),
            action="audit.verify",
            object_type="audit_chain",
            object_id="main",
            details=details,
        )
    return details


@shared_task(bind=True, acks_late=True, ignore_result=True)
def audit_chain_check_task(self: Task[[], None]) -> None:
    audit_chain_check(task_id=self.request.id)
