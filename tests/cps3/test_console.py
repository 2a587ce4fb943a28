"""The migration's console pages: the dashboard, the exceptions, a wave launched by one operator
and approved by a second in their own session."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.test import Client

from cms.callers import Caller
from cms.models import SitePool
from cms.services.holder_import import holder_import
from core.actors import Actor
from core.roles import Role
from cps3.generator import Rates, csv_bytes, export_rows, holder_rows
from cps3.inventory import cps3_import
from cps3.models import Wave
from cps3.waves import WaveSpec, wave_create

pytestmark = pytest.mark.django_db
RATES = Rates(**{name: 0.0 for name in Rates.__dataclass_fields__} | {"holder_unknown": 0.1})


@pytest.fixture
def wave(cps3: Any, cps4: Any, make_user: Any) -> Wave:
    holder_import(
        content=csv_bytes(holder_rows(30, seed=9, rates=RATES)), caller=Caller.for_system("t")
    )
    content = csv_bytes(export_rows(30, seed=9, rates=RATES))
    cps3_import(
        stream=io.BytesIO(content), filename="e.csv", size=len(content), actor=Actor.system("t")
    )
    site = SitePool.objects.create(code="nantes", name="Nantes")
    lead = make_user("issuance_operator", username="lead")
    return wave_create(
        spec=WaveSpec(
            name="ouest",
            pool_id=site.pk,
            daily_capacity=10,
            start_on=dt.date(2030, 1, 1),
        ),
        user=lead,
    )


def _as(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_the_wave_page_by_role(wave: Wave, role: Role, make_user: Any) -> None:
    response = _as(make_user(role.value)).get(f"/console/migration/waves/{wave.pk}/")
    allowed = role in (Role.ISSUANCE_OPERATOR, Role.SECURITY_OFFICER, Role.AUDITOR)
    assert response.status_code == (200 if allowed else 403)


def test_launch_asked_by_one_operator_and_approved_by_another(wave: Wave, make_user: Any) -> None:
    lead = wave.created_by
    url = f"/console/migration/waves/{wave.pk}/"
    first = _as(lead)
    page = first.post(url, {"action": "launch", "reason": "ouest, janvier"}, follow=True)
    html = page.content.decode()
    assert "second issuance operator" in html and "Approve launch" not in html
    wave.refresh_from_db()
    assert wave.status == Wave.Status.AWAITING_APPROVAL
    second = _as(make_user("issuance_operator", username="second"))
    html = second.get(url).content.decode()
    assert "Approve launch" in html and "ouest, janvier" in html
    act = html.split('name="act" value="')[1].split('"')[0]
    auditor = _as(make_user("auditor"))
    assert auditor.post(url, {"action": "approve", "act": act}).status_code == 403
    second.post(url, {"action": "approve", "act": act})
    wave.refresh_from_db()
    assert wave.status == Wave.Status.RUNNING and wave.approved_by is not None
    board = auditor.get("/console/migration/").content.decode()
    assert "ouest" in board
    exceptions = auditor.get("/console/migration/exceptions/?kind=holder_unknown").content.decode()
    assert "no holder with this national identifier" in exceptions
    csv = auditor.get("/console/migration/exceptions.csv")
    assert csv.status_code == 200 and b"holder_unknown" in csv.content


def test_the_wave_page_confirmation_dialogs_send_their_decision(wave: Wave) -> None:
    """The wave's actions are the console's confirmation dialogs: they send ``decision``; the
    answer's message is shown once (the frame's flash messages, no page-local copy)."""
    from core.models import AuditEvent

    url = f"/console/migration/waves/{wave.pk}/"
    lead = _as(wave.created_by)
    html = lead.get(url).content.decode()
    assert 'data-open-dialog="dlg-cancel"' in html and 'name="decision" value="cancel"' in html
    page = lead.post(url, {"decision": "cancel"}, follow=True)
    wave.refresh_from_db()
    assert wave.status == Wave.Status.CANCELLED
    assert AuditEvent.objects.filter(object_id=str(wave.pk), action__endswith="cancel").exists()
    assert page.content.decode().count("Done.") == 1


def test_the_migration_pages_speak_french(wave: Wave, make_user: Any) -> None:
    """The anomaly kinds and the wave states are translated; the filter keeps the codes."""
    auditor = _as(make_user("auditor"))
    board = auditor.get("/console/migration/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Porteur inconnu du référentiel" in board and "<td>Brouillon</td>" in board
    assert "?kind=holder_unknown" in board and "Holder unknown to the registry" not in board
    page = auditor.get(
        "/console/migration/exceptions/?kind=holder_unknown", HTTP_ACCEPT_LANGUAGE="fr"
    ).content.decode()
    assert "<td>Porteur inconnu du référentiel</td>" in page
