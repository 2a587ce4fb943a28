"""``POST /api/v1/stations/jobs/<id>/abandon``: issuance operators and security officers give up
an interrupted personalization whose card will not come back."""

from __future__ import annotations

import uuid

import pytest

from tests.cms.personalization.conftest import interrupted_session

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_operator_abandons_an_interrupted_job_through_the_api(
    scene, virtual_card, api_client_for
):
    from cms.choices import CardStatus
    from cms.models import Card, CardCertificate, PersonalizationJob
    from core.models import AuditEvent
    from pki.models import Certificate

    session = interrupted_session(scene, virtual_card)
    operator = api_client_for("issuance_operator")
    url = f"/api/v1/stations/jobs/{session.job_id}/abandon"

    response = operator.post(url, {"note": "card lost in the post"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == str(session.job_id) and body["status"] == "cancelled"
    assert body["station"] is None and body["lease_expires_at"] is None
    job = PersonalizationJob.objects.get(pk=session.job_id)
    assert job.status == "cancelled"
    assert Card.objects.get(pk=job.card_id).status == CardStatus.SPOILED
    linked = CardCertificate.objects.filter(card_id=job.card_id).values("certificate_id")
    assert not Certificate.objects.filter(pk__in=linked).exclude(status="revoked").exists()
    event = AuditEvent.objects.get(action="personalization.job_abandon")
    assert event.details["note"] == "card lost in the post"
    assert event.actor_label == operator.user.username

    again = api_client_for("security_officer").post(url, {}, format="json")
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    assert AuditEvent.objects.filter(action="personalization.job_abandon").count() == 1


def test_abandon_refuses_other_roles_unknown_jobs_and_long_notes(
    scene, virtual_card, api_client_for
):
    session = interrupted_session(scene, virtual_card)
    url = f"/api/v1/stations/jobs/{session.job_id}/abandon"
    assert api_client_for("auditor").post(url, {}, format="json").status_code == 403
    assert api_client_for("station").post(url, {}, format="json").status_code == 403
    officer = api_client_for("security_officer")
    unknown = officer.post(f"/api/v1/stations/jobs/{uuid.uuid4()}/abandon", {}, format="json")
    assert unknown.status_code == 404
    too_long = officer.post(url, {"note": "x" * 201}, format="json")
    assert too_long.status_code == 400
    from cms.models import PersonalizationJob

    assert PersonalizationJob.objects.get(pk=session.job_id).status == "queued"
