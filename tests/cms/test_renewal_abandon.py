"""Abandoning a certificate renewal on the card whose card will not come back
(cms.personalization.renewal.renewal_abandon): the API, the console page and its action."""

from __future__ import annotations

import pytest

from cms.choices import CardStatus
from cms.models import Card, CardCertificate, CardRenewal
from core.models import AuditEvent
from tests.cms.conftest import card_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def interrupted(cps4, link_certificates):
    """An ACTIVE card with its valid pair and an interrupted renewal whose two new certificates
    (on hold) never reached the card."""

    def _make(checkpoint: dict | None = None) -> tuple[CardRenewal, list, list]:
        card = card_make(cps4, CardStatus.ACTIVE)
        current = link_certificates(card)
        pending = link_certificates(card_make(cps4), "on_hold")  # then moved to the card
        for cert in pending:
            link = CardCertificate.objects.get(certificate=cert)
            link.card, link.slot = card, f"{link.slot}.next"
            link.save(update_fields=["card", "slot"])
        renewal = CardRenewal.objects.create(
            card=card,
            status=CardRenewal.Status.INTERRUPTED,
            phase="certify",
            checkpoint=checkpoint,
            error="card removed",
        )
        return renewal, current, pending

    return _make


def _url(renewal: CardRenewal) -> str:
    return f"/api/v1/renewals/{renewal.pk}/abandon"


def test_the_api_abandons_with_a_reason_revokes_the_pending_pair_and_audits(
    interrupted, api_client_for
):
    renewal, current, pending = interrupted()
    helpdesk = api_client_for("helpdesk_agent")
    listed = helpdesk.get("/api/v1/renewals/open")
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [str(renewal.pk)]

    assert helpdesk.post(_url(renewal), {}, format="json").status_code == 400
    assert helpdesk.post(_url(renewal), {"reason": "  "}, format="json").status_code == 400
    assert (
        api_client_for("auditor").post(_url(renewal), {"reason": "x"}, format="json").status_code
        == 403
    )
    renewal.refresh_from_db()
    assert renewal.status == CardRenewal.Status.INTERRUPTED  # nothing happened yet

    done = helpdesk.post(_url(renewal), {"reason": "card destroyed by the holder"}, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "failed"
    renewal.refresh_from_db()
    assert renewal.status == CardRenewal.Status.FAILED and renewal.ended_at is not None
    for cert in pending:
        cert.refresh_from_db()
        assert cert.status == "revoked" and cert.revocation_reason == "cessation_of_operation"
    for cert in current:
        cert.refresh_from_db()
        assert cert.status == "valid"
    card = Card.objects.get(pk=renewal.card_id)
    assert sorted(link.slot for link in CardCertificate.objects.filter(card=card)) == [
        "auth",
        "sign",
    ]
    event = AuditEvent.objects.get(action="card.renewal_abandon")
    assert event.actor_label == helpdesk.user.username
    assert event.object_id == str(card.pk)
    assert event.details["reason"] == "card destroyed by the holder"
    assert event.details["renewal_id"] == str(renewal.pk)
    assert set(event.details["retired"]) == {"auth.next", "sign.next"}

    again = helpdesk.post(_url(renewal), {"reason": "again"}, format="json")
    assert again.status_code == 409
    assert helpdesk.get("/api/v1/renewals/open").json()["results"] == []
    missing = helpdesk.post(
        "/api/v1/renewals/00000000-0000-0000-0000-000000000001/abandon",
        {"reason": "x"},
        format="json",
    )
    assert missing.status_code == 404
    assert AuditEvent.objects.filter(action="card.renewal_abandon").count() == 1


def test_after_the_verified_checkpoint_the_new_certificates_stay_valid(interrupted, api_client_for):
    """From ``verified`` on the card may already show the new pair: nothing is revoked."""
    renewal, _, pending = interrupted({"completed": ["keys", "certify", "verified"]})
    done = api_client_for("issuance_operator").post(
        _url(renewal), {"reason": "holder moved abroad"}, format="json"
    )
    assert done.status_code == 200, done.content
    for cert in pending:
        cert.refresh_from_db()
        assert cert.status == "on_hold"
    assert AuditEvent.objects.get(action="card.renewal_abandon").details["retired"] == {}


def test_the_console_lists_open_renewals_and_abandons_one_after_confirmation(
    interrupted, client, make_user
):
    renewal, _, pending = interrupted()
    card = Card.objects.get(pk=renewal.card_id)
    client.force_login(make_user("auditor"))
    page = client.get("/console/renewals/open/")
    assert page.status_code == 200
    html = page.content.decode()
    assert card.card_number in html and "card removed" in html
    assert "/abandon/" not in html  # an auditor changes nothing

    client.force_login(make_user("issuance_operator"))
    html = client.get("/console/renewals/open/").content.decode()
    action = f"/console/renewals/{renewal.pk}/abandon/"
    assert f'action="{action}"' in html and 'name="reason"' in html and "<dialog" in html

    refused = client.post(action, {"reason": ""}, follow=True)
    assert refused.redirect_chain[-1][0] == "/console/renewals/open/"
    assert "Say why the renewal is abandoned" in refused.content.decode()
    renewal.refresh_from_db()
    assert renewal.status == CardRenewal.Status.INTERRUPTED

    done = client.post(action, {"reason": "card lost in the post"}, follow=True)
    assert "Renewal abandoned" in done.content.decode()
    renewal.refresh_from_db()
    assert renewal.status == CardRenewal.Status.FAILED
    for cert in pending:
        cert.refresh_from_db()
        assert cert.status == "revoked"
    assert "No renewal in progress." in done.content.decode()
    event = AuditEvent.objects.get(action="card.renewal_abandon")
    assert event.details["reason"] == "card lost in the post"

    again = client.post(action, {"reason": "twice"}, follow=True)
    assert f"Renewal {renewal.pk} is failed." in again.content.decode()

    french = client.get("/console/renewals/open/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Renouvellements sur la carte" in french
