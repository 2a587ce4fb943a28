"""Console pages after issuance: the lost-card action, the campaign and bulk revocations."""

from __future__ import annotations

import pytest

from cms.choices import CardStatus
from cms.models import CardRequest
from core.models import AuditEvent
from tests.cms.conftest import card_make, cps4  # noqa: F401 - the product fixture

pytestmark = pytest.mark.django_db


def test_one_console_action_reports_a_lost_card(client, make_user, cps4):  # noqa: F811
    card = card_make(cps4, CardStatus.ACTIVE)
    client.force_login(make_user("helpdesk_agent"))
    page = client.get("/console/cards/report-loss/")
    assert page.status_code == 200 and b"identity_check" in page.content
    done = client.post(
        "/console/cards/report-loss/",
        {"card_number": card.card_number, "reason": "stolen", "identity_check": "ID card"},
    )
    assert done.status_code == 200
    card.refresh_from_db()
    assert card.status == CardStatus.REVOKED and card.revoke_reason == "stolen"
    assert CardRequest.objects.get(replaces=card).expedited
    assert AuditEvent.objects.filter(action="card.report_loss").count() == 1
    missing = client.post(
        "/console/cards/report-loss/",
        {"card_number": "80250000019999999999", "reason": "lost", "identity_check": "x"},
    )
    assert missing.status_code == 404
    empty = client.post("/console/cards/report-loss/", {"card_number": card.card_number})
    assert empty.status_code == 400


def test_campaign_and_bulk_pages_render_for_their_roles(client, make_user):
    client.force_login(make_user("auditor"))
    assert client.get("/console/renewals/").status_code == 200
    assert client.get("/console/bulk-revocations/").status_code == 200
    assert client.get("/console/cards/report-loss/").status_code == 403
