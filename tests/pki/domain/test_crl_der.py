"""The assembled CRL is byte-identical to cryptography's builder (PKCS#1 v1.5 is deterministic)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from pki.domain import builders, crl_der, der
from pki.domain.errors import ProfileViolation
from pki.domain.reasons import RevocationReason
from tests.pki.domain.conftest import NOW

LATER = NOW + dt.timedelta(days=1)
FULL_REASONS = [r for r in RevocationReason if r is not RevocationReason.REMOVE_FROM_CRL]


def _issuer(hierarchy: dict[str, Any]) -> builders.Issuer:
    issuer = hierarchy["issuing"]
    assert isinstance(issuer, builders.Issuer)
    return issuer


def _both(
    issuer: builders.Issuer,
    entries: list[builders.CrlEntry],
    *,
    number: int = 7,
    delta_base: int | None = None,
    this_update: dt.datetime = NOW,
    next_update: dt.datetime = LATER,
) -> tuple[bytes, bytes]:
    """(cryptography's CRL, the assembled CRL) for the same entries in the same order."""
    reference = builders.build_crl(
        issuer_certificate=issuer.certificate,
        signing_key=issuer.key,
        entries=entries,
        number=number,
        this_update=this_update,
        next_update=next_update,
        delta_base=delta_base,
        freshest_crl_url=None if delta_base is not None else issuer.urls.delta_crl,
    ).public_bytes(serialization.Encoding.DER)
    assembled = builders.assemble_crl(
        issuer_certificate=issuer.certificate,
        signing_key=issuer.key,
        entries=b"".join(crl_der.crl_entry(e.serial, e.revoked_at, e.reason) for e in entries),
        number=number,
        this_update=this_update,
        next_update=next_update,
        delta_base=delta_base,
        freshest_crl_url=None if delta_base is not None else issuer.urls.delta_crl,
    )
    return reference, assembled


def test_full_crl_every_reason_is_byte_identical(hierarchy: dict[str, Any]) -> None:
    entries = [
        builders.CrlEntry(0x7F + i, NOW - dt.timedelta(minutes=i), reason)
        for i, reason in enumerate(FULL_REASONS)
    ]
    reference, assembled = _both(_issuer(hierarchy), entries)
    assert assembled == reference


def test_delta_crl_with_remove_from_crl_is_byte_identical(hierarchy: dict[str, Any]) -> None:
    entries = [
        builders.CrlEntry(13, NOW, RevocationReason.REMOVE_FROM_CRL),
        builders.CrlEntry(14, NOW, RevocationReason.CERTIFICATE_HOLD),
    ]
    reference, assembled = _both(_issuer(hierarchy), entries, number=9, delta_base=8)
    assert assembled == reference
    crl = x509.load_der_x509_crl(assembled)
    assert crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator).critical


def test_empty_crl_is_byte_identical(hierarchy: dict[str, Any]) -> None:
    reference, assembled = _both(_issuer(hierarchy), [])
    assert assembled == reference


def test_large_crl_with_long_lengths_and_2050_dates_is_byte_identical(
    hierarchy: dict[str, Any],
) -> None:
    # 70,000 entries: a three-octet length on the list; 2050 onwards is GeneralizedTime
    far = dt.datetime(2051, 3, 4, 5, 6, 7, 890, tzinfo=dt.UTC)
    entries = [
        builders.CrlEntry((1 << 158) | (i * 7919), far if i % 3 else NOW, FULL_REASONS[i % 9])
        for i in range(70_000)
    ]
    reference, assembled = _both(
        _issuer(hierarchy), entries, this_update=far, next_update=far + dt.timedelta(days=1)
    )
    assert len(assembled) > 1 << 16
    assert assembled == reference


@settings(max_examples=60, deadline=None)
@given(
    serial=st.integers(min_value=1, max_value=(1 << 159) - 1),
    when=st.datetimes(
        min_value=dt.datetime(1950, 1, 1),
        max_value=dt.datetime(9998, 12, 31),
        timezones=st.just(dt.UTC),
    ),
    reason=st.sampled_from(FULL_REASONS),
)
def test_any_entry_is_byte_identical(
    hierarchy: dict[str, Any], serial: int, when: dt.datetime, reason: RevocationReason
) -> None:
    reference, assembled = _both(_issuer(hierarchy), [builders.CrlEntry(serial, when, reason)])
    assert assembled == reference


def test_assembled_crl_verifies_and_reads_back(hierarchy: dict[str, Any]) -> None:
    issuer = _issuer(hierarchy)
    _, assembled = _both(issuer, [builders.CrlEntry(11, NOW, RevocationReason.KEY_COMPROMISE)])
    crl = x509.load_der_x509_crl(assembled)
    assert crl.is_signature_valid(issuer.certificate.public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(11)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.key_compromise


def test_ec_signed_crl_verifies(hierarchy: dict[str, Any]) -> None:
    # ECDSA signatures are randomised: checked by verification, not by bytes
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = _issuer(hierarchy)
    assembled = builders.assemble_crl(
        issuer_certificate=issuer.certificate,
        signing_key=key,
        entries=crl_der.crl_entry(5, NOW, RevocationReason.SUPERSEDED),
        number=3,
        this_update=NOW,
        next_update=LATER,
    )
    assert x509.load_der_x509_crl(assembled).is_signature_valid(key.public_key())


def test_delta_base_must_precede_number(hierarchy: dict[str, Any]) -> None:
    issuer = _issuer(hierarchy)
    with pytest.raises(ProfileViolation) as err:
        builders.assemble_crl(
            issuer_certificate=issuer.certificate,
            signing_key=issuer.key,
            entries=b"",
            number=3,
            this_update=NOW,
            next_update=LATER,
            delta_base=3,
        )
    assert err.value.rule == "crl.delta_base"


@pytest.mark.parametrize(
    ("dotted", "expected"),
    [("2.5.29.21", "0603551d15"), ("1.2.840.113549.1.1.11", "06092a864886f70d01010b")],
)
def test_oid_encoding(dotted: str, expected: str) -> None:
    assert der.encode_oid(dotted).hex() == expected


@pytest.mark.parametrize("bad", ["1", "3.1", "1.40", "a.b"])
def test_oid_refuses_non_oids(bad: str) -> None:
    with pytest.raises(ValueError):
        der.encode_oid(bad)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError):
        der.encode_time(dt.datetime(2025, 1, 1))
