"""The one mapping from a stored certificate status to its CRL entry and OCSP status."""

from __future__ import annotations

import datetime as dt

import pytest

from pki.domain import crl_der
from pki.domain.reasons import RevocationReason
from pki.domain.status import (
    CertificateState,
    Listing,
    OcspStatus,
    crl_entry_of,
    listing_of,
    ocsp_status_of,
)

REVOKED_AT = dt.datetime(2025, 3, 1, 8, 30, tzinfo=dt.UTC)
HOLD_SINCE = dt.datetime(2025, 2, 1, 9, 0, tzinfo=dt.UTC)


def _stamps(reason: str = "") -> dict[str, object]:
    return {"revoked_at": REVOKED_AT, "revocation_reason": reason, "hold_since": HOLD_SINCE}


def test_a_valid_certificate_is_not_listed_and_good():
    assert listing_of(CertificateState.VALID, **_stamps()) is None
    assert crl_entry_of(7, "valid", **_stamps()) is None
    assert ocsp_status_of("valid", **_stamps()) == (OcspStatus.GOOD, None, None)


def test_a_revoked_certificate_is_listed_with_its_reason_since_its_revocation():
    stamps = _stamps("key_compromise")
    expected = Listing(REVOKED_AT, RevocationReason.KEY_COMPROMISE)
    assert listing_of("revoked", **stamps) == expected
    assert ocsp_status_of("revoked", **stamps) == (
        OcspStatus.REVOKED,
        REVOKED_AT,
        RevocationReason.KEY_COMPROMISE,
    )
    entry = crl_entry_of(7, "revoked", **stamps)
    assert entry == crl_der.crl_entry(7, REVOKED_AT, RevocationReason.KEY_COMPROMISE)


def test_a_held_certificate_is_listed_as_certificate_hold_since_the_hold():
    stamps = _stamps()
    assert ocsp_status_of("on_hold", **stamps) == (
        OcspStatus.REVOKED,
        HOLD_SINCE,
        RevocationReason.CERTIFICATE_HOLD,
    )
    entry = crl_entry_of(9, "on_hold", **stamps)
    assert entry == crl_der.crl_entry(9, HOLD_SINCE, RevocationReason.CERTIFICATE_HOLD)


@pytest.mark.parametrize(
    "status, stamps",
    [
        ("revoked", {"revoked_at": None, "revocation_reason": "superseded", "hold_since": None}),
        ("on_hold", {"revoked_at": None, "revocation_reason": "", "hold_since": None}),
        ("revoked", {"revoked_at": REVOKED_AT, "revocation_reason": "", "hold_since": None}),
        ("lost", _stamps()),
    ],
)
def test_an_inconsistent_row_is_refused_not_answered_good(status, stamps):
    with pytest.raises(ValueError):
        ocsp_status_of(status, **stamps)
