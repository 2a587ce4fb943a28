"""Our encodings against the public ANS test card certificate, byte for byte."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from pki.domain import extensions, names
from pki.domain.errors import ProfileViolation
from pki.domain.extensions import CardType, ProductCategory

REFERENCE = x509.load_der_x509_certificate(
    (Path(__file__).parent.parent / "fixtures" / "ans-test-card-auth.der").read_bytes()
)


def _reference_value(oid: x509.ObjectIdentifier) -> bytes:
    value = REFERENCE.extensions.get_extension_for_oid(oid).value
    assert isinstance(value, x509.UnrecognizedExtension)
    return value.value


def test_private_extensions_match_the_reference_card() -> None:
    assert extensions.product_category(ProductCategory.TEST_CARD).value == _reference_value(
        extensions.OID_PRODUCT_CATEGORY
    )
    assert extensions.card_type(CardType.CPE).value == _reference_value(extensions.OID_CARD_TYPE)
    assert extensions.card_number("2600301752").value == _reference_value(
        extensions.OID_CARD_NUMBER
    )


def test_profession_is_an_integer() -> None:
    assert extensions.profession(50).value == bytes.fromhex("020132")


@pytest.mark.parametrize("serial", ["123", "26003017520", "260030175A"])
def test_card_number_needs_ten_digits(serial: str) -> None:
    with pytest.raises(ProfileViolation) as err:
        extensions.card_number(serial)
    assert err.value.rule == "holder.card_serial"


def test_cpe_subject_encodes_like_the_reference() -> None:
    holder = names.Holder(
        national_id="30B0057881/CPET0002",
        surname="ADMINISTRATIF-CH057880002",
        given_name="CHARLES",
        title="Personnel santé ou social",
        card_serial="2600301752",
        card_type=CardType.CPE,
        organisation="HOPITAL DES 3 DAMES",
        organisation_unit="10B0057881",
        state="Paris (75)",
    )
    names.validate_holder(holder)
    assert names.holder_subject(holder).public_bytes() == REFERENCE.subject.public_bytes()


def test_cps_subject_has_the_multi_valued_rdn(holder: names.Holder) -> None:
    subject = names.holder_subject(holder)
    rdns = list(subject.rdns)
    assert [len(r) for r in rdns] == [1, 1, 3]
    assert rdns[0].get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "FR"
    assert rdns[1].get_attributes_for_oid(NameOID.TITLE)[0].value == "Médecin"
    assert {a.oid for a in rdns[2]} == {NameOID.COMMON_NAME, NameOID.SURNAME, NameOID.GIVEN_NAME}
    short = {NameOID.SURNAME: "SN", NameOID.GIVEN_NAME: "GN", NameOID.TITLE: "title"}
    assert subject.rfc4514_string(short) == (
        "CN=810002813839+SN=DONNAT-GADY+GN=ISABELLE,title=Médecin,C=FR"
    )


def test_cpe_without_organisation_names_the_rule(holder: names.Holder) -> None:
    bad = dataclasses.replace(holder, card_type=CardType.CPE)
    with pytest.raises(ProfileViolation) as err:
        names.validate_holder(bad)
    assert err.value.rule == "holder.organisation"
