"""Bulk revocation through the real broker and a real worker process: started by the approval of
the dual-control act, and resumed by the beat entry after a crash."""

from __future__ import annotations

import pytest

from tests.cms.conftest import card_make, cps4  # noqa: F401 - the product fixture
from tests.conftest import wait_until

pytestmark = pytest.mark.integration


def test_a_worker_runs_an_approved_bulk_revocation_and_resumes_a_crashed_one(
    celery_worker_process,
    make_user,
    cps4,  # noqa: F811
):
    from cms.choices import CardStatus
    from cms.models import BulkRevocation, Card
    from cms.services.bulk_revocation import bulk_revocation_run
    from cms.tasks import bulk_revocations_resume_task
    from core.dual_control import act_approve, act_request

    cards = [card_make(cps4, CardStatus.ACTIVE) for _ in range(4)]
    act = act_request(
        kind="cms.bulk_revocation",
        params={"selection": {"card_numbers": [c.card_number for c in cards[:3]]}},
        user=make_user("security_officer"),
        reason="a compromised batch",
    )
    act_approve(act_id=act.pk, user=make_user("security_officer"))  # queues the task on commit
    bulk = BulkRevocation.objects.get()
    wait_until(lambda: BulkRevocation.objects.get(pk=bulk.pk).status == "done")
    bulk.refresh_from_db()
    assert (bulk.revoked, bulk.total) == (3, 3)
    statuses = {c.pk: c.status for c in Card.objects.filter(pk__in=[c.pk for c in cards])}
    assert [statuses[c.pk] for c in cards] == ["REVOKED"] * 3 + ["ACTIVE"]

    crashed = BulkRevocation.objects.create(
        selection={"product_id": cps4.pk}, reason="compromised", act_id=act.pk, total=3
    )
    more = [card_make(cps4, CardStatus.ACTIVE) for _ in range(2)]
    bulk_revocation_run(bulk_id=crashed.pk, batch_size=1, max_batches=1)  # then the crash
    bulk_revocations_resume_task.delay()
    wait_until(lambda: BulkRevocation.objects.get(pk=crashed.pk).status == "done")
    crashed.refresh_from_db()
    assert crashed.revoked == 3
    assert not Card.objects.filter(pk__in=[cards[3].pk, *(c.pk for c in more)], status="ACTIVE")
