"""Station enrollment and disabling through the API; concurrent claims of one job."""

from __future__ import annotations

import threading

import pytest

from tests.cms.personalization.conftest import DrfApi, card_queued

pytestmark = pytest.mark.django_db(transaction=True)


def test_enrollment_code_works_once_and_disabling_refuses_the_next_call(
    scene, api_client_for, card_keys
):
    officer = api_client_for("security_officer")
    created = officer.post(
        "/api/v1/stations/create", {"site": scene.pool.code, "name": "bench-2"}, format="json"
    )
    assert created.status_code == 201
    code = created.json()["enrollment_code"]
    second = api_client_for("security_officer")  # station enrollment is a two-person act
    approval = created.json()["approval_id"]
    assert second.post(f"/api/v1/dual-control/acts/{approval}/approve").status_code == 200
    from cms.models import StationEnrollmentCode

    assert not StationEnrollmentCode.objects.filter(digest__contains=code).exists()

    from rest_framework.test import APIClient

    anonymous = APIClient()
    enrolled = anonymous.post("/api/v1/stations/enroll", {"code": code}, format="json")
    assert enrolled.status_code == 201
    token = enrolled.json()["token"]
    again = anonymous.post("/api/v1/stations/enroll", {"code": code}, format="json")
    assert again.status_code == 403

    station = DrfApi(token)
    assert station.client.post("/api/v1/station/claim", {}, format="json").status_code == 204

    station_id = enrolled.json()["station"]["id"]
    disabled = officer.post(f"/api/v1/stations/{station_id}/disable", {}, format="json")
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    assert station.client.post("/api/v1/station/claim", {}, format="json").status_code == 401


def test_an_expired_code_is_refused(scene):
    import datetime as dt

    from cms.personalization.stations import station_create, station_enroll
    from core.errors import Forbidden
    from demo import setup

    issued = station_create(
        site_code=scene.pool.code,
        name="late",
        caller=setup.SYSTEM,
        lifetime=dt.timedelta(seconds=-1),
    )
    with pytest.raises(Forbidden):
        station_enroll(code=issued.code)


def test_two_stations_claiming_one_job_at_once_never_share_it(scene, virtual_card):
    from django.db import connection

    from cms.models import PersonalizationJob
    from cms.personalization.claims import job_claim
    from cms.personalization.jobs import jobs_sync
    from demo import setup

    card_queued(scene, virtual_card)
    jobs_sync()
    second = setup.station_enrolled(scene.pool, name="station-2").station
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def claim(station):
        try:
            barrier.wait()
            results[station.name] = job_claim(station=station, identity=None)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(s,)) for s in (scene.station, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [job for job in results.values() if job is not None]
    assert len(won) == 1
    job = PersonalizationJob.objects.get()
    assert job.status == "claimed"
    assert job.station_id == won[0].station_id  # type: ignore[attr-defined]


def test_a_claim_with_half_a_byte_of_atr_is_refused_and_claims_nothing(scene, virtual_card):
    from cms.models import PersonalizationJob
    from cms.personalization.jobs import jobs_sync

    card_queued(scene, virtual_card)
    jobs_sync()
    station = DrfApi(scene.token)
    atr = virtual_card.contact.atr.hex().upper()
    response = station.client.post(
        "/api/v1/station/claim",
        {
            "atr": atr + "3",
            "chip_serial": virtual_card.serial.hex().upper(),
            "desfire_uid": virtual_card.desfire_chip.state.uid.hex().upper(),
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "atr" in response.json()["extra"]["fields"]
    job = PersonalizationJob.objects.get()
    assert job.status != "claimed" and job.station_id is None


def test_a_card_identity_is_whole_bytes_of_hex():
    from cms.personalization.jobs import CardIdentity
    from core.errors import BadInput

    for atr in ("3B8", "3BZZ"):
        with pytest.raises(BadInput):
            CardIdentity(atr=atr, chip_serial="0A0B0C0D")
    assert CardIdentity(atr="3b88", chip_serial="0A0B0C0D").atr == "3b88"
