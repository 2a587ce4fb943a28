"""Celery tasks of personalization: on the ``default`` queue (no key is needed), no payload
beyond ids, each one service call that re-checks state under a row lock."""

from __future__ import annotations

from celery import shared_task

from cms.personalization.jobs import jobs_expire


@shared_task(acks_late=True, ignore_result=True)
def jobs_lease_sweep_task() -> int:
    """Beat entry (``STATION_LEASE_SWEEP_SECONDS``): release the jobs whose lease expired."""
    return jobs_expire()
