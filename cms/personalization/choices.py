"""States of stations, jobs and personalization sessions."""

from __future__ import annotations

from django.db import models


class StationStatus(models.TextChoices):
    PENDING = "pending", "Waiting for enrollment"
    ACTIVE = "active", "Enrolled"
    DISABLED = "disabled", "Disabled"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    CLAIMED = "claimed", "Claimed by a station"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class SessionMode(models.TextChoices):
    PERSONALIZE = "personalize", "Personalize"
    ROLLBACK = "rollback", "Roll back"


class SessionStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Card issued"
    WIPED = "wiped", "Rolled back: card wiped to stock"
    SPOILED = "spoiled", "Rolled back: card spoiled"
    INTERRUPTED = "interrupted", "Interrupted (station lost or card removed)"
    ABORTED = "aborted", "Aborted before writing"
