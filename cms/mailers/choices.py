"""States of PIN mailers and print runs."""

from __future__ import annotations

from django.db import models


class MailerStatus(models.TextChoices):
    QUEUED = "queued", "Waiting for a print run"
    IN_RUN = "in_run", "In a print run not reconciled yet"
    POSTED = "posted", "Enveloped and posted: codes deleted"
    VOIDED = "voided", "Voided before printing (new codes replaced them): codes deleted"


class PrintRunStatus(models.TextChoices):
    GATHERED = "gathered", "Gathered, not printed yet"
    PRINTED = "printed", "Printed; may be printed again until reconciled"
    RECONCILED = "reconciled", "Reconciled: enveloped letters posted, the others queued again"
