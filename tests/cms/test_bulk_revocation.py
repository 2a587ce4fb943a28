"""Bulk revocation: selection and preview, dual control to launch, batches, resumption."""

from __future__ import annotations

import pytest

from cms.choices import CardStatus, ProductStatus
from cms.models import BulkRevocation, Card, Product
from cms.services.bulk_revocation import (
    bulk_revocation_preview,
    bulk_revocation_run,
    selection_clean,
)
from core.errors import BadInput
from core.models import AuditEvent
from tests.cms.conftest import CPS4_DEFINITION, card_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def withdrawn(db) -> Product:
    return Product.objects.create(
        name="CPS4-W", version="1", status=ProductStatus.ISSUED, validity_years=6,
        definition={**CPS4_DEFINITION, "name": "CPS4-W"}, definition_sha256="3" * 64,
    )  # fmt: skip


@pytest.mark.parametrize(
    "selection",
    [
        {},
        {"batch_id": 1, "product_id": 2},
        {"product_id": "x"},
        {"issued_window": {"from": "2026-01-01T00:00:00+00:00", "to": "2025-01-01T00:00:00+00:00"}},
        {"issued_window": {"from": "2026-01-01", "to": "2027-01-01"}},
        {"card_numbers": ["123"]},
        {"card_numbers": []},
        {"owner": 1},
    ],
)
def test_bad_selections_are_refused(selection):
    with pytest.raises(BadInput):
        selection_clean(selection)


def test_preview_launch_under_dual_control_and_resume_after_a_crash(
    cps4, withdrawn, link_certificates, make_user, django_capture_on_commit_callbacks
):
    from core.dual_control import act_approve, act_request
    from core.errors import Forbidden

    targets = [card_make(withdrawn, status) for status in ["ACTIVE"] * 4 + ["SUSPENDED"]]
    certs = link_certificates(targets[0])
    card_make(withdrawn, CardStatus.REVOKED)  # out of service already: not counted
    others = [card_make(cps4, CardStatus.ACTIVE) for _ in range(2)]

    preview = bulk_revocation_preview(selection={"product_id": withdrawn.pk})
    assert preview["total"] == 5
    assert preview["by_status"] == {"ACTIVE": 4, "SUSPENDED": 1}
    by_numbers = bulk_revocation_preview(
        selection={"card_numbers": [targets[0].card_number, others[0].card_number]}
    )
    assert by_numbers["total"] == 2

    first, second = make_user("security_officer"), make_user("security_officer")
    act = act_request(
        kind="cms.bulk_revocation",
        params={"selection": {"product_id": withdrawn.pk}, "reason": "compromised"},
        user=first,
        reason="vendor reported the batch's keys leaked",
    )
    assert "5 cards" in act.summary
    assert not BulkRevocation.objects.exists()  # nothing happens before the second person
    with pytest.raises(Forbidden):
        act_approve(act_id=act.pk, user=first)
    # The task is queued after commit; here the test runs the batches itself (and crashes).
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        act = act_approve(act_id=act.pk, user=second)
    assert len(callbacks) == 1
    bulk = BulkRevocation.objects.get()
    assert (bulk.total, bulk.revoked, bulk.status, bulk.act_id) == (5, 0, "running", act.pk)

    bulk = bulk_revocation_run(bulk_id=bulk.pk, batch_size=2, max_batches=1)  # then a crash
    assert (bulk.revoked, bulk.status) == (2, "running")
    bulk = bulk_revocation_run(bulk_id=bulk.pk, batch_size=2)  # resumed
    assert (bulk.revoked, bulk.status) == (5, "done") and bulk.finished_at is not None
    for card in targets:
        card.refresh_from_db()
        assert (card.status, card.revoke_reason) == (CardStatus.REVOKED, "compromised")
    for cert in certs:
        cert.refresh_from_db()
        assert (cert.status, cert.revocation_reason) == ("revoked", "key_compromise")
    assert all(c.status == CardStatus.ACTIVE for c in Card.objects.filter(product=cps4))
    revokes = AuditEvent.objects.filter(action="card.revoke")
    assert revokes.count() == 5
    assert {e.details["bulk_revocation_id"] for e in revokes} == {bulk.pk}
    assert AuditEvent.objects.filter(action="card.bulk_revocation_done").count() == 1
    again = bulk_revocation_run(bulk_id=bulk.pk, batch_size=2)
    assert again.revoked == 5 and AuditEvent.objects.filter(action="card.revoke").count() == 5


def test_the_api_previews_launches_and_shows_progress(withdrawn, api_client_for):
    for _ in range(3):
        card_make(withdrawn, CardStatus.ACTIVE)
    officer = api_client_for("security_officer")
    body = {"selection": {"product_id": withdrawn.pk}}
    assert (
        officer.post("/api/v1/bulk-revocations/preview", body, format="json").json()["total"] == 3
    )
    bad = officer.post("/api/v1/bulk-revocations/preview", {"selection": {}}, format="json")
    assert bad.status_code == 400
    launched = officer.post(
        "/api/v1/bulk-revocations/launch",
        {**body, "reason": "compromised", "justification": "withdrawn product"},
        format="json",
    )
    assert launched.status_code == 202, launched.content
    act_id = launched.json()["act_id"]
    same = officer.post(f"/api/v1/dual-control/acts/{act_id}/approve", {}, format="json")
    assert same.status_code == 403
    approved = api_client_for("security_officer").post(
        f"/api/v1/dual-control/acts/{act_id}/approve", {}, format="json"
    )
    assert approved.status_code == 200, approved.content
    bulk_id = approved.json()["result"]["bulk_revocation_id"]
    progress = officer.get(f"/api/v1/bulk-revocations/{bulk_id}").json()
    assert progress["total"] == 3
    assert api_client_for("helpdesk_agent").get("/api/v1/bulk-revocations").status_code == 403
