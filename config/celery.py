"""The Celery application: queues ``default`` and ``signing`` (workers that hold keys)."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("cps_cms")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("signing"))
app.conf.task_create_missing_queues = False
app.autodiscover_tasks()
