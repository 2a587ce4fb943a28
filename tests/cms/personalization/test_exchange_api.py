"""The exchange call as a station makes it: the session's own station only, hex answers only."""

from __future__ import annotations

import pytest

from tests.cms.personalization.conftest import DrfApi
from tests.cms.personalization.test_lease_sweep import _claimed

pytestmark = pytest.mark.django_db(transaction=True)


def test_another_station_cannot_answer_for_a_session(scene, virtual_card):
    from cms.models import PersonalizationSession
    from demo import setup

    payload = _claimed(scene, virtual_card)
    other = setup.station_enrolled(scene.pool, name="neighbour")
    url = f"/api/v1/station/sessions/{payload['session']}/exchange"
    body = {"seq": payload["seq"], "responses": ["9000"]}

    refused = DrfApi(other.token).client.post(url, body, format="json")
    assert refused.status_code == 409
    session = PersonalizationSession.objects.get(pk=payload["session"])
    assert session.status == "running" and session.apdus == 0 and session.seq == payload["seq"]


def test_a_response_that_is_not_hex_is_refused_before_the_card_program(scene, virtual_card):
    from cms.models import PersonalizationSession

    payload = _claimed(scene, virtual_card)
    url = f"/api/v1/station/sessions/{payload['session']}/exchange"
    client = scene.api().client
    for bad in (["90 00"], ["zz"], [9000], ["9" * 8193]):
        response = client.post(url, {"seq": payload["seq"], "responses": bad}, format="json")
        assert response.status_code == 400, (bad, response.content)
    session = PersonalizationSession.objects.get(pk=payload["session"])
    assert session.status == "running" and session.apdus == 0
