"""Certificate renewal on the card through the station relay, in process (real views, real PKI,
the virtual card): a CPS4 issued and activated, the tests' clock moved into the renewal window,
the daily sweep invites it, a station renews it; then the registry, the PKI and the card itself.
Tears across the whole program are swept on the card alone in ``tests/cardsim/test_renewal.py``;
here a tear mid-program is resumed through the server."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from tests.cardsim.test_renewal import working_pair
from tests.cms.personalization.conftest import card_queued, link_of

pytestmark = pytest.mark.django_db(transaction=True)


def _active(scene, virtual_card):
    from cms.models import Card
    from cms.services.cards import card_transition
    from personalization_station.relay import personalize

    request = card_queued(scene, virtual_card)
    assert personalize(scene.api(), link_of(virtual_card)).state == "done"
    card_transition(card_id=request.card_id, transition="activate", caller=scene.operator)
    card = Card.objects.get(pk=request.card_id)
    assert card.status == "ACTIVE"
    return card


def _pin_of(card_row) -> str:
    from cms.mailers.services import _unseal
    from cms.models import PinMailer

    return str(_unseal(PinMailer.objects.get(card=card_row)).pin)


def _current(card_row):
    from cms.models import CardCertificate

    return {
        link.slot: link.certificate
        for link in CardCertificate.objects.filter(card=card_row).select_related("certificate")
    }


def _invite(card_row, settings):
    from cms.tasks import expiry_sweep_task

    settings.RENEWAL_CERTIFICATE_WINDOW_DAYS = 90
    not_after = min(c.not_after for c in _current(card_row).values())
    report = expiry_sweep_task()
    assert report["invited"] == 0  # not due yet
    return not_after - dt.timedelta(days=30)


def _station_now(scene):
    """The station re-enrolled at the moved clock (its token would have expired by then)."""
    from demo import setup
    from tests.cms.personalization.conftest import DrfApi

    return DrfApi(setup.station_enrolled(scene.pool).token)


def _check_renewed(card_row, old, virtual_card, pin):
    from cms.models import CardRenewal, RenewalInvitation
    from core.models import AuditEvent

    new = _current(card_row)
    assert set(new) >= {"auth", "sign"}
    for slot in ("auth", "sign"):
        assert new[slot].pk != old[slot].pk and new[slot].status == "valid"
        old[slot].refresh_from_db()
        assert old[slot].status == "revoked" and old[slot].revocation_reason == "superseded"
        assert new[f"{slot}-{old[slot].pk}"].pk == old[slot].pk  # kept linked, as history
    assert not [s for s in new if s.endswith(".next")]
    assert RenewalInvitation.objects.get(card=card_row).status == "done"
    assert CardRenewal.objects.get(card=card_row, status="done")
    seen = working_pair(virtual_card, pin.encode())
    assert seen == {slot: bytes(new[slot].der) for slot in ("auth", "sign")}
    actions = set(
        AuditEvent.objects.filter(object_id=str(card_row.pk)).values_list("action", flat=True)
    )
    assert {"card.renewal_start", "card.renewal_certify", "card.renewal_verified"} <= actions
    assert {"card.renew_certificates", "card.renewal_done", "card.renewal_end"} <= actions


def test_an_invited_card_is_renewed_at_a_station_with_its_unchanged_pin(
    scene, virtual_card, settings
):
    from personalization_station.relay import renew

    card_row = _active(scene, virtual_card)
    pin = _pin_of(card_row)
    old = _current(card_row)
    when = _invite(card_row, settings)
    # nothing to renew before the invitation
    assert renew(scene.api(), link_of(virtual_card), pin=lambda: pin).state == "no_renewal"
    with time_machine.travel(when, tick=False):
        from cms.tasks import expiry_sweep_task

        assert expiry_sweep_task()["invited"] == 1
        asked = []

        def typed() -> str:
            asked.append(1)
            return pin

        api = _station_now(scene)
        outcome = renew(api, link_of(virtual_card), pin=typed)
        assert outcome.state == "done", outcome.message
        assert asked == [1]  # the PIN is asked once, at the station
        # renewed: nothing more to do
        assert renew(api, link_of(virtual_card), pin=lambda: pin).state == "no_renewal"
    _check_renewed(card_row, old, virtual_card, pin)


@pytest.mark.parametrize("tear_after", [20, 60])
def test_a_renewal_torn_mid_card_resumes_at_the_next_insertion(
    scene, virtual_card, settings, tear_after
):
    from cms.models import CardCertificate, CardRenewal
    from personalization_station.relay import renew

    card_row = _active(scene, virtual_card)
    pin = _pin_of(card_row)
    old = _current(card_row)
    when = _invite(card_row, settings)
    with time_machine.travel(when, tick=False):
        from cms.tasks import expiry_sweep_task

        assert expiry_sweep_task()["invited"] == 1
        api = _station_now(scene)
        virtual_card.faults.tear_at = virtual_card.apdu_count + tear_after
        first = renew(api, link_of(virtual_card), pin=lambda: pin)
        assert first.state == "interrupted"
        assert CardRenewal.objects.get(card=card_row).status == "interrupted"
        virtual_card.insert()
        # the card shows one working pair while the renewal waits
        shown = working_pair(virtual_card, pin.encode())
        links = {
            link.slot: bytes(link.certificate.der)
            for link in CardCertificate.objects.filter(card=card_row).select_related("certificate")
        }
        assert shown in (
            {s: links[s] for s in ("auth", "sign")},
            {s: links.get(f"{s}.next") for s in ("auth", "sign")},
        )
        second = renew(api, link_of(virtual_card), pin=lambda: pin)
        assert second.state == "done", second.message
    _check_renewed(card_row, old, virtual_card, pin)


def test_an_abandoned_renewal_revokes_its_pending_certificates_and_the_card_keeps_its_pair(
    scene, virtual_card, settings
):
    from cms.models import CardCertificate, CardRenewal
    from cms.personalization.renewal import renewal_abandon
    from core.models import AuditEvent
    from personalization_station.relay import renew

    card_row = _active(scene, virtual_card)
    pin = _pin_of(card_row)
    old = _current(card_row)
    when = _invite(card_row, settings)
    with time_machine.travel(when, tick=False):
        from cms.tasks import expiry_sweep_task

        assert expiry_sweep_task()["invited"] == 1
        api = _station_now(scene)
        virtual_card.faults.tear_at = virtual_card.apdu_count + 30  # while the bank is written
        assert renew(api, link_of(virtual_card), pin=lambda: pin).state == "interrupted"
    renewal = CardRenewal.objects.get(card=card_row)
    pending = [
        link.certificate
        for link in CardCertificate.objects.filter(card=card_row, slot__endswith=".next")
    ]
    assert len(pending) == 2 and {c.status for c in pending} == {"on_hold"}
    renewal_abandon(renewal_id=renewal.pk)
    renewal.refresh_from_db()
    assert renewal.status == "failed"
    for cert in pending:
        cert.refresh_from_db()
        assert cert.status == "revoked" and cert.revocation_reason == "cessation_of_operation"
    assert not CardCertificate.objects.filter(card=card_row, slot__endswith=".next").exists()
    virtual_card.insert()
    shown = working_pair(virtual_card, pin.encode())
    assert shown == {slot: bytes(old[slot].der) for slot in ("auth", "sign")}
    assert {c.status for c in _current(card_row).values()} == {"valid"}
    assert AuditEvent.objects.filter(action="card.renewal_abandon").count() == 1


@pytest.mark.parametrize("step", ["certify", "verified"])
def test_a_renewal_abandoned_during_a_round_trip_stops_before_its_next_effect(
    scene, virtual_card, settings, monkeypatch, step
):
    """An operator abandons the renewal while the server is inside a round trip (just before it
    issues the new certificates, or before it releases them at ``verified``): the round trip's
    write refuses, the renewal stays abandoned, and the card keeps its pair."""
    from cms.models import CardCertificate, CardRenewal
    from cms.personalization import renewal as renewal_module
    from personalization_station.relay import renew

    card_row = _active(scene, virtual_card)
    pin = _pin_of(card_row)
    old = _current(card_row)
    when = _invite(card_row, settings)
    name = "_certify" if step == "certify" else "_checkpoint"
    original = getattr(renewal_module, name)

    def abandoned_first(renewal, request):
        if step == "certify" or request.phase == "verified":
            renewal_module.renewal_abandon(renewal_id=renewal.pk)
        return original(renewal, request)

    monkeypatch.setattr(renewal_module, name, abandoned_first)
    with time_machine.travel(when, tick=False):
        from cms.tasks import expiry_sweep_task

        assert expiry_sweep_task()["invited"] == 1
        outcome = renew(_station_now(scene), link_of(virtual_card), pin=lambda: pin)
    assert outcome.state != "done"
    assert CardRenewal.objects.get(card=card_row).status == "failed"
    assert not CardCertificate.objects.filter(card=card_row, slot__endswith=".next").exists()
    assert {slot: c.pk for slot, c in _current(card_row).items()} == {
        slot: c.pk for slot, c in old.items()
    }
    assert {c.status for c in _current(card_row).values()} == {"valid"}
    virtual_card.insert()
    shown = working_pair(virtual_card, pin.encode())
    assert shown == {slot: bytes(old[slot].der) for slot in ("auth", "sign")}
