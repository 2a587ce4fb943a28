"""Celery tasks of the migration: a wave's advance, and the daily round (advance every running
wave, hand over what is due, refresh the dashboard's numbers)."""

from __future__ import annotations

from celery import shared_task

from cps3.handover import handover_sweep
from cps3.models import Wave
from cps3.waves import summaries_refresh, wave_advance


@shared_task(acks_late=True, ignore_result=True)
def wave_advance_task(wave_id: int) -> int:
    created = wave_advance(wave_id=wave_id)
    summaries_refresh(wave_ids=[wave_id])
    return created


@shared_task(acks_late=True, ignore_result=True)
def migration_daily_task() -> dict[str, int]:
    running = list(Wave.objects.filter(status=Wave.Status.RUNNING).values_list("pk", flat=True))
    created = sum(wave_advance(wave_id=wave_id) for wave_id in running)
    revoked = handover_sweep()
    refreshed = summaries_refresh()
    return {"requests": created, "cps3_revoked": revoked, "waves_refreshed": refreshed}


@shared_task(acks_late=True, ignore_result=True)
def migration_summaries_task() -> int:
    return summaries_refresh()
