"""A task goes through the real broker to a real worker process and writes to PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import transaction

from core.actors import Actor
from core.audit import audit_event_create
from core.models import AuditEvent
from core.tasks import audit_chain_check_task
from tests.conftest import wait_until

pytestmark = pytest.mark.integration


def test_audit_chain_check_runs_in_a_real_worker(celery_worker_process):
    with transaction.atomic():
        audit_event_create(
            actor=Actor.system("tests"), action="x.y", object_type="t", object_id="1"
        )
        transaction.on_commit(audit_chain_check_task.delay)

    event = wait_until(lambda: AuditEvent.objects.filter(action="audit.verify").first())
    assert event.actor_label == "audit_chain_check"
    assert event.details["ok"] is True and event.details["checked"] == 1
    assert event.details["head_hash"] == AuditEvent.objects.get(seq=1).hash
