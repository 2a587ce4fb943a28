"""Reads of the PIN mailer queue and the print runs (metadata only: codes are never read here)."""

from __future__ import annotations

from django.db.models import QuerySet

from cms.mailers.choices import MailerStatus
from cms.models import PinMailer, PrintRun
from core.errors import NotFound

# What the queue shows unless asked otherwise: every letter not posted yet.
PENDING = (MailerStatus.QUEUED, MailerStatus.IN_RUN)


def pin_mailer_list(*, statuses: tuple[str, ...] = PENDING) -> QuerySet[PinMailer]:
    return (
        PinMailer.objects.filter(status__in=statuses)
        .select_related("site", "run")
        .order_by("created_at", "id")
        .defer("sealed_secrets")
    )


def print_run_list() -> QuerySet[PrintRun]:
    return PrintRun.objects.select_related("site").order_by("-created_at", "-id")


def print_run_get(*, run_id: int) -> PrintRun:
    run = print_run_list().filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"No print run {run_id}.")
    return run


def sites_with_queued_mailers() -> list[int | None]:
    """The sites (their ids; None for mailers of no site) whose queue holds a letter."""
    return list(
        PinMailer.objects.filter(status=MailerStatus.QUEUED)
        .order_by()
        .values_list("site_id", flat=True)
        .distinct()
    )
