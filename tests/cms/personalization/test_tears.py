"""Tear the card out at APDU n of a CPS4 run, put it back, and check DESIGN.md §11: the card is
recognised by its serial and recovered, and no valid certificate lives outside an issued card.

The indexes come from a measured run (``tear_plan``): ``make test`` tears at a handful spread across
the phases, the ``slow`` sweep at every APDU of the run. Each test records how its card ended
(``outcome``: the session states after the tear, e.g. ``done`` = resumed and issued,
``wiped+done`` = wiped to stock then issued on the next insertion, ``spoiled``) in the JUnit XML.
"""

from __future__ import annotations

import pytest

from tests.cms.personalization.conftest import card_queued, link_of
from tests.cms.personalization.tear_plan import STATION_IDENTIFICATION_APDUS, measure

pytestmark = pytest.mark.django_db(transaction=True)

PLAN = measure()


def _tear_and_recover(scene, card, n: int) -> list[str]:
    from cms.choices import CardStatus
    from cms.models import Card, CardCertificate, PersonalizationSession
    from personalization_station.relay import personalize
    from pki.models import Certificate

    request = card_queued(scene, card)
    card.faults.tear_at = card.apdu_count + STATION_IDENTIFICATION_APDUS + n
    first = personalize(scene.api(), link_of(card))
    assert first.state == "interrupted", f"APDU {n} of {PLAN.apdus}: {first.state} {first.message}"
    registry_card = Card.objects.get(chip_serial=card.serial.hex().upper())
    assert registry_card.status == CardStatus.PERSONALIZING
    # §11: nothing valid outside an issued card while it is out of the reader
    linked = CardCertificate.objects.filter(card=registry_card).values("certificate_id")
    assert not Certificate.objects.filter(pk__in=linked, status="valid").exists()

    card.insert()
    # Resumed from the checkpoint; where resuming is refused the card is wiped to stock and the
    # request, queued again with it (the only blank card), completes on the next insertion.
    states = []
    for _ in range(3):
        states.append(personalize(scene.api(), link_of(card)).state)
        if states[-1] in ("done", "spoiled"):
            break
    assert states[-1] in ("done", "spoiled") and set(states) <= {"done", "wiped", "spoiled"}
    if states[-1] == "spoiled":  # closed before the tear, refused on resume: never half-issued
        registry_card.refresh_from_db()
        request.refresh_from_db()
        assert registry_card.status == CardStatus.SPOILED
        assert request.status in ("failed", "queued")
        cards_certs = Certificate.objects.filter(profile__in=("cps_auth", "cps_sign"))
        assert not cards_certs.exclude(status="revoked").exists()
        return states
    request.refresh_from_db()
    registry_card.refresh_from_db()
    assert request.status == "done" and registry_card.status == CardStatus.ISSUED
    links = CardCertificate.objects.filter(card=registry_card)
    assert sorted(link.slot for link in links) == ["auth", "sign"]
    kept = {link.certificate_id for link in links}
    assert set(Certificate.objects.filter(status="on_hold").values_list("pk", flat=True)) == kept
    assert (
        not Certificate.objects.exclude(pk__in=kept)
        .exclude(status="revoked")
        .filter(profile__in=("cps_auth", "cps_sign"))
        .exists()
    )
    assert PersonalizationSession.objects.filter(card=registry_card, status="done").count() == 1
    return states


def _record(record_property, n: int, states: list[str]) -> None:
    record_property("phase", PLAN.phase_of(n))
    record_property("step", PLAN.labels[n - 1])
    record_property("outcome", "+".join(states))


@pytest.mark.parametrize("n", PLAN.sample())
def test_a_torn_card_is_recovered(scene, virtual_card, record_property, n):
    _record(record_property, n, _tear_and_recover(scene, virtual_card, n))


@pytest.mark.slow
@pytest.mark.parametrize("n", PLAN.sweep())
def test_tear_sweep(scene, virtual_card, record_property, n):
    _record(record_property, n, _tear_and_recover(scene, virtual_card, n))


def test_the_tear_plan_matches_a_station_run(scene, virtual_card):
    """The measured plan counts exactly the APDUs a station relays for a whole card, so the
    indexes above cover the run and nothing past its end."""
    from personalization_station.relay import personalize

    card_queued(scene, virtual_card)
    start = virtual_card.apdu_count
    outcome = personalize(scene.api(), link_of(virtual_card))
    assert outcome.state == "done", outcome.message
    relayed = virtual_card.apdu_count - start - STATION_IDENTIFICATION_APDUS
    assert relayed == PLAN.apdus, (
        f"a station run took {relayed} APDUs, the tear plan measured {PLAN.apdus}: has the "
        "program or the certificate size changed? (see tests/cms/personalization/tear_plan.py)"
    )


def test_a_refused_answer_rolls_the_card_back_to_stock(scene, virtual_card):
    """A status word the program does not expect (injected on the 30th APDU) rolls back: the
    card is wiped to stock, its certificates revoked, the request queued again."""
    from cms.models import Card, CardRequest
    from personalization_station.relay import personalize
    from pki.models import Certificate

    request = card_queued(scene, virtual_card)
    virtual_card.faults.sw_at[virtual_card.apdu_count + 3 + 30] = 0x6581
    outcome = personalize(scene.api(), link_of(virtual_card))
    assert outcome.state in ("wiped", "spoiled"), outcome.message
    registry_card = Card.objects.get(chip_serial=virtual_card.serial.hex().upper())
    from cms.choices import CardStatus

    wiped_states = (CardStatus.IN_STOCK, CardStatus.ALLOCATED)  # wiped, perhaps allocated again
    assert registry_card.status in (wiped_states if outcome.state == "wiped" else ("SPOILED",))
    assert not Certificate.objects.exclude(status="revoked").exists() or outcome.state == "wiped"
    request = CardRequest.objects.get(pk=request.pk)
    assert request.status in ("queued", "failed")
    if outcome.state == "wiped":
        again = personalize(scene.api(), link_of(virtual_card))
        assert again.state == "done", again.message
