"""The virtual cards answer with the facts of the product definitions (cards.products)."""

from __future__ import annotations

import pytest

from cards.products import CPS3, CPS4, PinPolicy
from cardsim import facts
from cardsim.card import Card, blank_state
from cardsim.contact import ContactState, PinObject


def test_mf_file_finds_each_mf_file_by_name() -> None:
    for ef in CPS4.contact.mf_files:
        assert facts.mf_file(CPS4, ef.name) is ef
    assert facts.mf_file(CPS4, "EF.SN.ICC").fid == 0xD003


def test_mf_file_names_the_product_and_file_it_lacks() -> None:
    with pytest.raises(KeyError, match=r"CPS3 has no MF file 'EF_ACTUA'"):
        facts.mf_file(CPS3, "EF_ACTUA")


def test_pkcs15_file_finds_each_application_file_by_name() -> None:
    for ef in CPS4.contact.application.files:
        assert facts.pkcs15_file(CPS4, ef.name) is ef
    with pytest.raises(KeyError, match=r"CPS3 has no PKCS#15 file 'EF\.CDF'"):
        facts.pkcs15_file(CPS3, "EF.CDF")


def test_pin_object_unset_takes_the_policy() -> None:
    policy = PinPolicy("PIN", 0x85, 6, 8, 5)
    pin = PinObject.unset(policy, puk_ref=0x86)
    assert (pin.ref, pin.min_len, pin.max_len, pin.tries_max, pin.tries_left) == (
        0x85,
        6,
        8,
        5,
        5,
    )
    assert pin.puk_ref == 0x86
    assert pin.digest == ""


def test_cards_answer_with_the_atrs_of_the_definitions() -> None:
    cps4 = Card.blank("cps4")
    assert cps4.contact.power_on() == CPS4.contact.atr
    assert cps4.contactless is not None
    assert cps4.contactless.power_on() == CPS4.contactless_atr
    assert Card.blank("cps3").contact.power_on() == CPS3.contact.atr


def test_blank_cps4_follows_the_definition() -> None:
    state = ContactState.from_json(blank_state("cps4")["contact"])
    assert CPS4.scp03 is not None and CPS4.puk is not None
    assert state.kvn == CPS4.scp03.kvn
    assert len(state.key_enc) == CPS4.scp03.key_length
    assert state.serial[:5] == facts.ISSUER_PREFIX
    sn = state.mf.child(facts.EF_SN_ICC)
    assert sn is not None and bytes(sn.data) == state.serial
    pin, puk = state.pins[CPS4.pin.reference], state.pins[CPS4.puk.reference]
    assert (pin.min_len, pin.max_len, pin.tries_left) == (4, 4, CPS4.pin.tries)
    assert pin.puk_ref == CPS4.puk.reference
    assert (puk.min_len, puk.max_len, puk.tries_left) == (8, 8, CPS4.puk.tries)


def test_cps3_fixture_follows_the_definition() -> None:
    state = ContactState.from_json(blank_state("cps3")["contact"])
    df = state.mf.child(CPS3.contact.application.fid)
    assert df is not None and df.name == CPS3.contact.application.aid
    assert set(state.keys) == {slot.key_reference for slot in CPS3.key_slots}
    assert state.pins[CPS3.pin.reference].tries_max == CPS3.pin.tries

    # each slot's certificate is in the file the definition names, and certifies that slot's key
    from cryptography import x509

    for slot in CPS3.key_slots:
        ef = df.child(slot.certificate_fid)
        assert ef is not None, f"no certificate file {slot.certificate_fid:04X} for {slot.name}"
        der = bytes(ef.data)
        length = int.from_bytes(der[2:4], "big") + 4
        certificate = x509.load_der_x509_certificate(der[:length])
        from cryptography.hazmat.primitives.serialization import load_der_private_key

        private = load_der_private_key(state.keys[slot.key_reference].der, password=None)
        assert certificate.public_key().public_numbers() == private.public_key().public_numbers()
