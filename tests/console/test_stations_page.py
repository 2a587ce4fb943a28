"""Stations through the console: created with a one-time code shown once, listed, disabled."""

from __future__ import annotations

import pytest
from django.urls import reverse

from cms.models import SitePool, Station, StationEnrollmentCode
from cms.personalization.choices import StationStatus
from core.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_security_officer_creates_a_station_sees_its_code_once_and_disables_it(client, make_user):
    SitePool.objects.create(code="paris-11", name="Paris 11")
    client.force_login(make_user("security_officer", username="sophie"))
    response = client.post(reverse("console:station_create"), {"site": "paris-11", "name": "st-a"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    code = response.context["issued"].code
    assert code in response.content.decode()
    station = Station.objects.get(name="st-a")
    stored = StationEnrollmentCode.objects.get(station=station)
    assert stored.digest != code  # only a digest is kept
    assert code not in client.get(reverse("console:station", args=[station.pk])).content.decode()
    listing = client.get(reverse("console:stations"))
    assert [row["station"].pk for row in listing.context["rows"]] == [station.pk]
    event = AuditEvent.objects.get(action="station.create")
    assert code not in str(event.details)

    dup = client.post(
        reverse("console:station_create"), {"site": "paris-11", "name": "st-a"}, follow=True
    )
    assert "already has a station" in dup.content.decode()

    client.post(reverse("console:station_disable", args=[station.pk]), {"note": "stolen"})
    station.refresh_from_db()
    assert station.status == StationStatus.DISABLED


def test_operators_read_stations_but_cannot_create_one(client, make_user):
    SitePool.objects.create(code="paris-11", name="Paris 11")
    client.force_login(make_user("issuance_operator"))
    page = client.get(reverse("console:stations"))
    assert page.status_code == 200 and not page.context["may_manage"]
    denied = client.post(reverse("console:station_create"), {"site": "paris-11", "name": "x"})
    assert denied.status_code == 403 and not Station.objects.exists()
