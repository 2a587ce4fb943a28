"""The daily expiry sweep, with time moved forward (the tests' clock): certificate renewal
invitations, renewal requests, EXPIRED; in batches, idempotent; the campaign's counts."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from cms.choices import CardStatus, RequestKind, RequestStatus
from cms.models import CardRequest, DenyListEntry, RenewalInvitation
from cms.services.expiry import campaign, expiry_sweep
from core.models import AuditEvent
from tests.cms.conftest import card_make

pytestmark = pytest.mark.django_db


def _active_card_with_certificates(cps4, link_certificates):
    card = card_make(cps4, CardStatus.ACTIVE)
    certs = link_certificates(card)
    card.expires_at = timezone.now() + dt.timedelta(days=6 * 365)
    card.save(update_fields=["expires_at"])
    return card, certs


def test_the_sweep_invites_requests_and_expires_in_batches_and_only_once(
    cps4, link_certificates, settings
):
    settings.RENEWAL_CERTIFICATE_WINDOW_DAYS = 90
    settings.RENEWAL_CARD_WINDOW_DAYS = 120
    cards = [_active_card_with_certificates(cps4, link_certificates) for _ in range(3)]
    first_cert_end = min(c.not_after for c in cards[0][1])
    card_end = cards[0][0].expires_at

    assert expiry_sweep(batch_size=2).invited == 0  # nothing is due today

    with time_machine.travel(first_cert_end - dt.timedelta(days=30), tick=False):
        assert campaign()["certificates"]["due"] == 3
        report = expiry_sweep(batch_size=2)  # two batches
        assert report.invited == 3 and report.renewal_requests == 0
        assert RenewalInvitation.objects.filter(status="invited").count() == 3
        assert AuditEvent.objects.filter(action="card.renewal_invite").count() == 3
        again = expiry_sweep(batch_size=2)
        assert (again.invited, again.renewal_requests, again.expired) == (0, 0, 0)
        counts = campaign()["certificates"]
        assert (counts["due"], counts["invited"], counts["overdue"]) == (0, 3, 0)

    with time_machine.travel(first_cert_end + dt.timedelta(days=1), tick=False):
        assert campaign()["certificates"]["overdue"] == 3

    # Renewed certificates (here: revoked superseded, as the renewal program does) close the
    # invitation of the first card.
    from core.actors import Actor
    from pki import services
    from pki.domain.reasons import RevocationReason

    for cert in cards[0][1]:
        services.certificate_revoke(
            certificate_id=cert.pk, reason=RevocationReason.SUPERSEDED, actor=Actor.system("t")
        )
    with time_machine.travel(first_cert_end - dt.timedelta(days=29), tick=False):
        assert expiry_sweep(batch_size=2).invitations_done == 1
        assert campaign()["certificates"]["done"] == 1

    with time_machine.travel(card_end - dt.timedelta(days=60), tick=False):
        report = expiry_sweep(batch_size=2)
        assert report.renewal_requests == 3
        renewals = CardRequest.objects.filter(kind=RequestKind.RENEWAL)
        assert {r.replaces_id for r in renewals} == {c.pk for c, _ in cards}
        assert {r.status for r in renewals} == {RequestStatus.DRAFT}
        assert expiry_sweep(batch_size=2).renewal_requests == 0
        assert campaign()["cards"]["requested"] == 3

    with time_machine.travel(card_end + dt.timedelta(days=1), tick=False):
        assert campaign()["cards"]["overdue"] == 3
        report = expiry_sweep(batch_size=2)
        assert report.expired == 3
        for card, _ in cards:
            card.refresh_from_db()
            assert card.status == CardStatus.EXPIRED
            assert DenyListEntry.objects.get(card=card).reason == "expired"
        assert expiry_sweep(batch_size=2).expired == 0
        assert campaign()["cards"]["overdue"] == 0


def test_certificates_of_a_card_that_ends_first_are_not_renewed(cps4, link_certificates):
    card, certs = _active_card_with_certificates(cps4, link_certificates)
    card.expires_at = min(c.not_after for c in certs) - dt.timedelta(days=1)
    card.save(update_fields=["expires_at"])
    with time_machine.travel(card.expires_at - dt.timedelta(days=10), tick=False):
        report = expiry_sweep()
    assert report.invited == 0 and report.renewal_requests == 1


def test_a_product_setting_overrides_the_certificate_window(cps4, link_certificates, settings):
    settings.RENEWAL_CERTIFICATE_WINDOW_DAYS = 10
    _card, certs = _active_card_with_certificates(cps4, link_certificates)
    end = min(c.not_after for c in certs)
    with time_machine.travel(end - dt.timedelta(days=30), tick=False):
        assert expiry_sweep().invited == 0
        cps4.definition = {**cps4.definition, "renewal": {"certificate_window_days": 45}}
        cps4.save(update_fields=["definition"])
        assert expiry_sweep().invited == 1


def test_the_campaign_and_invitations_in_the_api(cps4, link_certificates, api_client_for):
    card, certs = _active_card_with_certificates(cps4, link_certificates)
    end = min(c.not_after for c in certs)
    with time_machine.travel(end - dt.timedelta(days=30), tick=False):
        expiry_sweep()
        client = api_client_for("auditor")
        body = client.get("/api/v1/renewals/campaign").json()
        assert body["certificates"] == {"due": 0, "invited": 1, "done": 0, "overdue": 0}
        listed = client.get("/api/v1/renewals/invitations?status=invited").json()["results"]
        assert [(i["card"], i["card_number"]) for i in listed] == [(str(card.pk), card.card_number)]
        assert client.get("/api/v1/renewals/invitations?status=done").json()["results"] == []
