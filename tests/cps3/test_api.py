"""The migration API: waves created, launched by one person, approved by a second, the dashboard."""

from __future__ import annotations

import io
from typing import Any

import pytest

from cms.callers import Caller
from cms.models import CardRequest, SitePool
from cms.services.holder_import import holder_import
from core.actors import Actor
from cps3.generator import Rates, csv_bytes, export_rows, holder_rows
from cps3.inventory import cps3_import
from cps3.waves import summaries_refresh

pytestmark = pytest.mark.django_db

RATES = Rates(**{name: 0.0 for name in Rates.__dataclass_fields__} | {"card_revoked": 0.1})


@pytest.fixture
def inventory(cps3: Any, cps4: Any) -> None:
    holder_import(
        content=csv_bytes(holder_rows(40, seed=5, rates=RATES)), caller=Caller.for_system("t")
    )
    content = csv_bytes(export_rows(40, seed=5, rates=RATES))
    cps3_import(
        stream=io.BytesIO(content), filename="e.csv", size=len(content), actor=Actor.system("t")
    )


def test_a_wave_through_the_api(
    inventory: None, api_client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    site = SitePool.objects.create(code="lyon", name="Lyon")
    lead, second, auditor = (
        api_client_for("issuance_operator"),
        api_client_for("issuance_operator"),
        api_client_for("auditor"),
    )
    bad = lead.post(
        "/api/v1/migration/waves/create",
        {"name": "w", "site_id": site.pk, "daily_capacity": 0, "start_on": "2026-12-06"},
        format="json",
    )
    assert bad.status_code == 400 and "daily_capacity" in bad.json()["extra"]["fields"]
    created = lead.post(
        "/api/v1/migration/waves/create",
        {"name": "w", "site_id": site.pk, "daily_capacity": 5, "start_on": "2026-01-01",
         "professions": ["10", "60", "21", "70", "40", "50", "91", "80", "28", "93", "26", "92",
                         "98"]},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.json()
    wave = created.json()
    active = 40 - sum(1 for r in export_rows(40, seed=5, rates=RATES) if r[10] == "revoked")
    assert wave["planned"] == active and wave["status"] == "draft"
    preview = auditor.get(f"/api/v1/migration/waves/{wave['id']}").json()
    assert sum(d["count"] for d in preview["days"]) == active
    assert auditor.post(f"/api/v1/migration/waves/{wave['id']}/launch", {}).status_code == 403

    launch = lead.post(
        f"/api/v1/migration/waves/{wave['id']}/launch", {"reason": "wave 1"}, format="json"
    )
    assert launch.status_code == 202
    act = launch.json()
    assert lead.post(f"/api/v1/dual-control/acts/{act['id']}/approve", {}).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        approved = second.post(f"/api/v1/dual-control/acts/{act['id']}/approve", {}, format="json")
    assert approved.status_code == 200, approved.json()
    assert CardRequest.objects.filter(kind="migration").count() == active  # all due since January
    summaries_refresh()
    board = auditor.get("/api/v1/migration/dashboard").json()
    assert board["totals"]["planned"] == board["totals"]["requested"] == active
    assert board["exceptions"]["card_revoked"] == 40 - active
    assert auditor.get("/api/v1/migration/dashboard?wave=x").status_code == 400
    report = auditor.get("/api/v1/migration/exceptions.csv")
    assert (
        report.status_code == 200 and report.content.decode().count("card_revoked") == 40 - active
    )
    listed = auditor.get("/api/v1/migration/exceptions?kind=card_revoked").json()
    assert listed["count"] == 40 - active
