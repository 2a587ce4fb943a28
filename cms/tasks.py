"""Celery tasks of the registry: the holder import run by a worker (its progress kept in the cache
for the console to poll; ``CACHE_URL``: Redis when workers and web servers are separate processes;
the uploaded file waits in the cache under the import's id, not in the task message), and the
tasks after issuance (expiry sweep, bulk revocations): no payload, one service call each."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import shared_task
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import transaction

from cms.callers import Caller
from cms.services.expiry import expiry_sweep
from cms.services.holder_import import holder_import
from cms.services.holders import _require_write
from core.errors import ApplicationError, BadInput

STATE_TTL = 24 * 3600


def _key(import_id: str, part: str = "state") -> str:
    return f"cms:holder-import:{import_id}:{part}"


def holder_import_state(import_id: str) -> dict[str, Any] | None:
    """``{"state": "queued"|"running"|"done"|"failed", "rows": read, "estimate": lines, "user_id",
    and when done "report": {...}}``, or None for an unknown or expired import."""
    state: dict[str, Any] | None = cache.get(_key(import_id))
    return state


def holder_import_start(*, content: bytes, caller: Caller) -> str:
    """Queue an import of ``content`` for the caller; returns its id (``holder_import_state``)."""
    _require_write(caller)
    user_id = caller.user_id
    if user_id is None:
        raise BadInput("A holder import is started by a named operator.")
    import_id = uuid.uuid4().hex
    estimate = max(content.count(b"\n") - 1, 0) + (0 if content.endswith(b"\n") else 1)
    cache.set(_key(import_id, "content"), content, STATE_TTL)
    cache.set(
        _key(import_id),
        {"state": "queued", "rows": 0, "estimate": estimate, "user_id": user_id},
        STATE_TTL,
    )
    transaction.on_commit(lambda: holder_import_task.delay(import_id, user_id))
    return import_id


@shared_task(acks_late=True, ignore_result=True)
def holder_import_task(import_id: str, user_id: int) -> None:
    state = holder_import_state(import_id)
    content = cache.get(_key(import_id, "content"))
    if state is None or content is None:
        return  # expired, or run already by a redelivered message
    caller = Caller.for_user(User.objects.get(pk=user_id))

    def progress(rows: int) -> None:
        cache.set(_key(import_id), {**state, "state": "running", "rows": rows}, STATE_TTL)

    try:
        report = holder_import(content=content, caller=caller, progress=progress)
    except ApplicationError as exc:  # a file the import refuses (no header, wrong encoding...)
        cache.set(_key(import_id), {**state, "state": "failed", "error": exc.message}, STATE_TTL)
        cache.delete(_key(import_id, "content"))
        return
    except Exception:
        error = "the import stopped on an internal error; see the worker's log"
        cache.set(_key(import_id), {**state, "state": "failed", "error": error}, STATE_TTL)
        cache.delete(_key(import_id, "content"))
        raise
    cache.set(
        _key(import_id),
        {
            **state,
            "state": "done",
            "rows": report.total,
            "report": {
                "total": report.total,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "rejected": [
                    {"line": r.line, "national_id": r.national_id, "errors": r.errors}
                    for r in report.rejected
                ],
            },
        },
        STATE_TTL,
    )
    cache.delete(_key(import_id, "content"))


log = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def expiry_sweep_task() -> dict[str, int]:
    """Beat entry (daily, ``EXPIRY_SWEEP_HOUR``): invitations, renewal requests, EXPIRED.
    Idempotent: run twice, the second finds nothing to do."""
    report = expiry_sweep()
    log.info("expiry sweep: %s", report)
    return {
        "invited": report.invited,
        "invitations_done": report.invitations_done,
        "renewal_requests": report.renewal_requests,
        "expired": report.expired,
        "skipped": report.skipped,
    }


@shared_task(acks_late=True, ignore_result=True)
def bulk_revocation_run_task(bulk_id: int) -> int:
    """Run (or resume) one bulk revocation to its end; returns the cards it revoked in all."""
    from cms.services.bulk_revocation import bulk_revocation_run

    return bulk_revocation_run(bulk_id=bulk_id).revoked


@shared_task(acks_late=True, ignore_result=True)
def bulk_revocations_resume_task() -> int:
    """Beat entry: queue again every bulk revocation still running (a crashed worker's); two runs
    at once share the work (row locks, skip locked)."""
    from cms.services.bulk_revocation import bulk_revocations_running

    running = bulk_revocations_running()
    for bulk_id in running:
        bulk_revocation_run_task.delay(bulk_id)
    return len(running)
