"""Lifecycle effects through cms.effects: real pki services on certificate rows, and the deny list."""

from __future__ import annotations

import pytest

from cms.choices import CardStatus
from cms.models import DenyListEntry
from cms.services.cards import card_transition, card_transition_approve
from core.models import AuditEvent
from tests.cms.conftest import card_make

pytestmark = pytest.mark.django_db


def _statuses(certs):
    for cert in certs:
        cert.refresh_from_db()
    return {(c.status, c.revocation_reason) for c in certs}


def test_issue_puts_certificates_on_hold(cps4, link_certificates, system):
    card = card_make(cps4, CardStatus.PERSONALIZING)
    certs = link_certificates(card)
    card_transition(card_id=card.pk, transition="issue", caller=system)
    assert _statuses(certs) == {("on_hold", "")}
    card.refresh_from_db()
    assert card.issued_at and card.expires_at.year - card.issued_at.year == 6
    assert AuditEvent.objects.filter(action="pki.certificate_hold").count() == 2


def test_activation_releases_the_hold(cps4, link_certificates, caller_for):
    card = card_make(cps4, CardStatus.ISSUED)
    certs = link_certificates(card, status="on_hold")
    card_transition(card_id=card.pk, transition="activate", caller=caller_for("helpdesk_agent"))
    assert _statuses(certs) == {("valid", "")}


def test_suspension_holds_and_denies_reinstatement_releases_and_allows(
    cps4, link_certificates, caller_for
):
    card = card_make(cps4, CardStatus.ACTIVE)
    certs = link_certificates(card)
    helpdesk = caller_for("helpdesk_agent")
    card_transition(card_id=card.pk, transition="suspend", caller=helpdesk)
    assert _statuses(certs) == {("on_hold", "")}
    entry = DenyListEntry.objects.get(card=card)
    assert (entry.desfire_uid, entry.reason) == (card.desfire_uid, "suspended")
    pending = card_transition(card_id=card.pk, transition="reinstate", caller=helpdesk).approval
    assert _statuses(certs) == {("on_hold", "")}  # nothing happens before the second approval
    card_transition_approve(approval_id=pending.pk, caller=caller_for("security_officer"))
    assert _statuses(certs) == {("valid", "")}
    assert not DenyListEntry.objects.filter(card=card).exists()


@pytest.mark.parametrize(
    "reason, crl_reason",
    [
        ("lost", "key_compromise"),
        ("stolen", "key_compromise"),
        ("compromised", "key_compromise"),
        ("superseded", "superseded"),
        ("damaged", "superseded"),
        ("holder_left", "cessation_of_operation"),
        ("deceased", "cessation_of_operation"),
    ],
)
def test_revocation_revokes_with_the_mapped_reason_and_denies(
    reason, crl_reason, cps4, link_certificates, caller_for
):
    card = card_make(cps4, CardStatus.SUSPENDED)
    certs = link_certificates(card, status="on_hold")
    DenyListEntry.objects.create(card=card, desfire_uid=card.desfire_uid, reason="suspended")
    card_transition(
        card_id=card.pk, transition="revoke", caller=caller_for("helpdesk_agent"), reason=reason
    )
    assert _statuses(certs) == {("revoked", crl_reason)}
    assert DenyListEntry.objects.get(card=card).reason == "revoked"
    event = AuditEvent.objects.get(action="card.revoke")
    assert event.details["crl_reason"] == crl_reason and len(event.details["revoked"]) == 2


def test_revocation_skips_certificates_already_revoked(cps4, link_certificates, caller_for):
    card = card_make(cps4, CardStatus.ACTIVE)
    certs = link_certificates(card)
    from pki.domain.reasons import RevocationReason
    from pki.services import certificate_revoke

    certificate_revoke(
        certificate_id=certs[0].pk, reason=RevocationReason.KEY_COMPROMISE, actor=caller_for().actor
    )
    card_transition(
        card_id=card.pk, transition="revoke", caller=caller_for("helpdesk_agent"), reason="damaged"
    )
    assert _statuses(certs) == {("revoked", "key_compromise"), ("revoked", "superseded")}


@pytest.mark.parametrize("transition", ["wipe", "spoil"])
def test_an_unfinished_card_has_its_certificates_revoked(
    transition, cps4, link_certificates, system
):
    card = card_make(cps4, CardStatus.PERSONALIZING)
    certs = link_certificates(card)
    card_transition(card_id=card.pk, transition=transition, caller=system)
    assert _statuses(certs) == {("revoked", "cessation_of_operation")}


def test_expiry_denies_contactless(cps4, system):
    card = card_make(cps4, CardStatus.ACTIVE)
    card_transition(card_id=card.pk, transition="expire", caller=system)
    assert DenyListEntry.objects.get(card=card).reason == "expired"


def test_a_failing_pki_effect_leaves_nothing_partial(
    cps4, link_certificates, caller_for, monkeypatch
):
    from cms import effects
    from core.errors import ServiceUnavailable

    card = card_make(cps4, CardStatus.ACTIVE)
    certs = link_certificates(card)
    real_revoke = effects.pki_services.certificate_revoke
    calls = []

    def revoke_then_fail(**kwargs):
        calls.append(kwargs["certificate_id"])
        if len(calls) == 2:  # the key backend goes away after the first certificate
            raise ServiceUnavailable("key backend unavailable")
        return real_revoke(**kwargs)

    monkeypatch.setattr(effects.pki_services, "certificate_revoke", revoke_then_fail)
    before = AuditEvent.objects.count()
    with pytest.raises(ServiceUnavailable):
        card_transition(
            card_id=card.pk, transition="revoke", caller=caller_for("helpdesk_agent"), reason="lost"
        )
    card.refresh_from_db()
    assert card.status == CardStatus.ACTIVE and card.revoke_reason == ""
    assert _statuses(certs) == {("valid", "")}  # the first revocation was rolled back too
    assert not DenyListEntry.objects.exists() and AuditEvent.objects.count() == before
