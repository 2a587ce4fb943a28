"""Issue 11 §4: a station is enrolled only with two authenticated security officers.

The first asks for the station (or a fresh code) and holds the one-time code; the code enrolls
nothing until a second security officer approves the dual-control act. The requester cannot
approve their own act, and nobody without the role can.
"""

from __future__ import annotations

import pytest

from cms.models import SitePool, Station
from core.models import AuditEvent, DualControlAct

pytestmark = pytest.mark.django_db


def _enroll(client, code):
    return client.post("/api/v1/stations/enroll", {"code": code}, format="json")


def test_a_station_code_works_only_after_a_second_officer_approves(api_client_for):
    from rest_framework.test import APIClient

    SitePool.objects.create(code="lyon", name="Lyon")
    alice, bob = api_client_for("security_officer"), api_client_for("security_officer")
    operator = api_client_for("issuance_operator")
    created = alice.post(
        "/api/v1/stations/create", {"site": "lyon", "name": "desk-1"}, format="json"
    )
    assert created.status_code == 201, created.content
    code, act_id = created.json()["enrollment_code"], created.json()["approval_id"]
    assert act_id is not None
    anonymous = APIClient()
    refused = _enroll(anonymous, code)
    assert refused.status_code == 403 and "second security officer" in refused.json()["message"]
    assert alice.post(f"/api/v1/dual-control/acts/{act_id}/approve").status_code == 403
    assert operator.post(f"/api/v1/dual-control/acts/{act_id}/approve").status_code == 403
    assert _enroll(anonymous, code).status_code == 403
    approved = bob.post(f"/api/v1/dual-control/acts/{act_id}/approve")
    assert approved.status_code == 200, approved.content
    assert DualControlAct.objects.get(pk=act_id).status == DualControlAct.Status.EXECUTED
    enrolled = _enroll(anonymous, code)
    assert enrolled.status_code in (200, 201), enrolled.content
    station = Station.objects.get(name="desk-1")
    assert station.status == "active"
    approval = AuditEvent.objects.get(action="station.code_approve")
    assert approval.actor_label == bob.user.username
    assert approval.details["requested_by"] == alice.user.username
    assert code not in str(list(AuditEvent.objects.values_list("details", flat=True)))
    assert code not in str(list(DualControlAct.objects.values_list("params", "result")))


def test_a_renewed_code_waits_for_a_second_officer_too(api_client_for):
    from rest_framework.test import APIClient

    from cms.personalization.stations import station_create
    from demo import setup

    pool = SitePool.objects.create(code="lille", name="Lille")
    first = station_create(site_code=pool.code, name="desk-2", caller=setup.SYSTEM)
    assert _enroll(APIClient(), first.code).status_code in (200, 201)
    alice, bob = api_client_for("security_officer"), api_client_for("security_officer")
    renewed = alice.post(f"/api/v1/stations/{first.station.pk}/enrollment-code")
    assert renewed.status_code in (200, 201), renewed.content
    code, act_id = renewed.json()["enrollment_code"], renewed.json()["approval_id"]
    assert _enroll(APIClient(), code).status_code == 403
    assert bob.post(f"/api/v1/dual-control/acts/{act_id}/approve").status_code == 200
    assert _enroll(APIClient(), code).status_code in (200, 201)
