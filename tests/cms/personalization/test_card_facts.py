"""One owner per fact of an issued card: the number on the chip, in the registry, on the deny list
and in the certificates is the chip serial's (docs/adr/0012-card-number.md); the registry's expiry
is the end date written on the card, and card and certificates take their end dates by the one
calendar rule (``cards.products.add_years``)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.cms.personalization.conftest import card_queued, link_of

pytestmark = pytest.mark.django_db(transaction=True)


def _actua(virtual_card) -> tuple[dt.date, dt.date]:
    """EF_ACTUA read from the card as any reader would: (start, end) dates."""
    from cards import tlv
    from cards.transport import transmit_apdu

    contact = link_of(virtual_card).contact
    assert transmit_apdu(contact, bytes.fromhex("00A4080C02D010"), "SELECT EF_ACTUA").sw == 0x9000
    read = transmit_apdu(contact, bytes.fromhex("00B0000000"), "READ BINARY EF_ACTUA")
    assert read.sw == 0x9000
    template, _ = tlv.decode_one(read.data)
    dates = []
    for tag in (0x81, 0x82):
        found = template.find(tag)
        assert found is not None, f"EF_ACTUA has no tag {tag:X}"
        dates.append(dt.datetime.strptime(found.value.decode(), "%Y%m%d").date())
    return dates[0], dates[1]


def test_an_issued_card_has_one_number_and_one_end_date_everywhere(scene, virtual_card):
    from cryptography import x509
    from django.utils import timezone

    from cards.products import CPS4, add_years, card_number
    from cms.models import Card, CardCertificate, DenyListEntry, PersonalizationSession
    from cms.services.cards import card_transition
    from personalization_station.relay import personalize
    from pki.domain.extensions import OID_CARD_NUMBER

    card_queued(scene, virtual_card)
    outcome = personalize(scene.api(), link_of(virtual_card))
    assert outcome.state == "done", outcome.message
    card = Card.objects.get(chip_serial=virtual_card.serial.hex().upper())
    session = PersonalizationSession.objects.get(card=card)

    # The number: the chip's serial, in the registry and in every certificate.
    assert card.card_number == virtual_card.serial.hex().upper()
    printed = f"{card.card_number[:10]}/{card_number(virtual_card.serial)}"
    links = list(CardCertificate.objects.filter(card=card).select_related("certificate"))
    assert len(links) == 2
    for link in links:
        certificate = x509.load_der_x509_certificate(bytes(link.certificate.der))
        extension = certificate.extensions.get_extension_for_oid(OID_CARD_NUMBER)
        assert printed.encode() in extension.value.value

    # The end date: on the card, in the registry, by the same rule as the certificates'.
    start, end = _actua(virtual_card)
    assert (start, end) == (session.valid_from, session.valid_until)
    assert end == add_years(start, CPS4.validity_years)
    assert card.expires_at is not None
    assert timezone.localtime(card.expires_at).date() == end
    for link in links:
        certificate = x509.load_der_x509_certificate(bytes(link.certificate.der))
        not_before = certificate.not_valid_before_utc
        assert certificate.not_valid_after_utc == add_years(not_before, 3)
        assert certificate.not_valid_after_utc.date() <= end

    # The deny list names the card by the same number.
    card_transition(card_id=card.pk, transition="activate", caller=scene.operator)
    card_transition(card_id=card.pk, transition="revoke", caller=scene.operator, reason="stolen")
    assert DenyListEntry.objects.get(card=card).card_number == card.card_number
