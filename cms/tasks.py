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
