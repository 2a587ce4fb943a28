"""National identifiers and départements: pure, no database."""

from __future__ import annotations

import pytest

from cms.identifiers import IdentifierError, IdKind, departement_of, luhn_valid, parse_national_id


def test_the_reference_rpps_example_is_valid():
    nid = parse_national_id(" 810002813839 ")
    assert nid.kind is IdKind.RPPS and nid.local == "10002813839" and str(nid) == "810002813839"


def test_an_rpps_with_a_wrong_check_digit_is_refused():
    with pytest.raises(IdentifierError, match="check digit"):
        parse_national_id("810002813838")


@pytest.mark.parametrize(
    "raw, message",
    [
        ("", "prefix"),
        ("7123456789", "unknown prefix"),
        ("81000281383", "11 digits"),
        ("8100028138390", "11 digits"),
        ("81000281383X", "11 digits"),
        ("0ABC", "ADELI"),
        ("01234567", "ADELI"),
        ("3123", "FINESS"),
        ("4123456789", "Luhn"),
        ("512345678901234", "Luhn"),
        ("6123", "RPPS cabinet"),
    ],
)
def test_malformed_identifiers_are_refused_with_a_reason(raw, message):
    with pytest.raises(IdentifierError, match=message):
        parse_national_id(raw)


@pytest.mark.parametrize(
    "raw, kind",
    [
        ("0751234567", IdKind.ADELI),
        ("02A1234567", IdKind.ADELI),
        ("1751234567", IdKind.ADELI_CABINET),
        ("3750000001/ABC12", IdKind.FINESS),
        ("4732829320", IdKind.SIREN),  # SIREN 732829320 (a published example) passes Luhn
        ("573282932000074", IdKind.SIRET),
        ("610002813839/1", IdKind.RPPS_CABINET),
    ],
)
def test_other_registers_are_recognised_by_prefix(raw, kind):
    assert parse_national_id(raw).kind is kind


def test_luhn_rejects_non_digits_and_empty():
    assert not luhn_valid("") and not luhn_valid("12a4") and luhn_valid("79927398713")


@pytest.mark.parametrize(
    "postal, dept",
    [("75011", "75"), ("01000", "01"), ("20000", "2A"), ("20290", "2B"), ("97400", "974"),
     ("98800", "988"), ("7501", ""), ("", "")],
)  # fmt: skip
def test_departement_of_postal_code(postal, dept):
    assert departement_of(postal) == dept
