"""The lease sweep through the real broker and a real worker process (the beat entry's task)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.cardsim.conftest import key_pool  # noqa: F401 - shared session fixture
from tests.cms.personalization.conftest import card_key_dir, card_keys, scene, virtual_card  # noqa: F401
from tests.cms.personalization.test_lease_sweep import _claimed
from tests.conftest import wait_until
from tests.pki.conftest import pki_software, software_key_dir  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.integration


def test_a_worker_requeues_a_job_whose_lease_expired(
    scene,  # noqa: F811
    virtual_card,  # noqa: F811
    celery_worker_process,
):
    from django.utils import timezone

    from cms.models import PersonalizationJob
    from cms.personalization.tasks import jobs_lease_sweep_task
    from core.models import AuditEvent

    payload = _claimed(scene, virtual_card)
    job = PersonalizationJob.objects.get(pk=payload["job"])
    # The worker runs on the real clock: the station went silent a while ago.
    PersonalizationJob.objects.filter(pk=job.pk).update(
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    jobs_lease_sweep_task.delay()

    wait_until(lambda: PersonalizationJob.objects.get(pk=job.pk).status == "queued")
    event = AuditEvent.objects.get(action="personalization.job_release", object_id=str(job.pk))
    assert event.details["reason"].startswith("lease expired")
