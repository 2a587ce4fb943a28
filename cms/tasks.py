"""Celery tasks of the registry after issuance: no payload, one service call each."""

from __future__ import annotations

import logging

from celery import shared_task

from cms.services.expiry import expiry_sweep

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
