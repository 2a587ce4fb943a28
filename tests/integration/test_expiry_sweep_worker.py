"""The daily expiry sweep's beat task through the real broker and a real worker process."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.cms.conftest import card_make, cps4  # noqa: F401 - the product fixture
from tests.conftest import wait_until

pytestmark = pytest.mark.integration


def test_a_worker_runs_the_expiry_sweep(celery_worker_process, cps4):  # noqa: F811
    from django.utils import timezone

    from cms.choices import CardStatus
    from cms.models import Card, CardRequest
    from cms.tasks import expiry_sweep_task

    # The worker runs on the real clock: one card ended yesterday, one ends in a month.
    ended = card_make(cps4, CardStatus.ACTIVE)
    ending = card_make(cps4, CardStatus.ACTIVE)
    Card.objects.filter(pk=ended.pk).update(expires_at=timezone.now() - dt.timedelta(days=1))
    Card.objects.filter(pk=ending.pk).update(expires_at=timezone.now() + dt.timedelta(days=30))
    expiry_sweep_task.delay()
    wait_until(lambda: Card.objects.get(pk=ended.pk).status == CardStatus.EXPIRED)
    wait_until(lambda: CardRequest.objects.filter(replaces=ending, kind="renewal").exists())
    assert Card.objects.get(pk=ending.pk).status == CardStatus.ACTIVE
