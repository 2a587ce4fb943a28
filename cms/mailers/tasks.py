"""Celery task of the PIN mailers: the daily gathering of each site's queue into a print run.
No payload; each run is one service call that locks what it gathers."""

from __future__ import annotations

import logging

from celery import shared_task

from cms.callers import Caller
from cms.mailers.selectors import sites_with_queued_mailers
from cms.mailers.services import print_run_create
from core.errors import Conflict

log = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def print_runs_gather_task() -> int:
    """Beat entry (daily, ``MAILER_RUN_HOUR``): one print run per site with queued mailers.
    Run twice, the second finds nothing left to gather."""
    caller = Caller.for_system("mailers")
    created = 0
    for site_id in sites_with_queued_mailers():
        try:
            run = print_run_create(site_id=site_id, caller=caller)
        except Conflict:  # an operator gathered this site's queue meanwhile
            continue
        log.info("print run %s gathered %d mailers", run.label, run.mailer_count)
        created += 1
    return created
