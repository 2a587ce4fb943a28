"""What a certificate's stored status means to its relying parties: whether it is listed, since
when and why, as a CRL entry and as an OCSP status. One owner for the mapping that the services
(CRL entries, pre-signed OCSP answers) and the responder (answers signed on the fly) share."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from pki.domain import crl_der
from pki.domain.reasons import RevocationReason


class CertificateState(enum.StrEnum):
    """The stored status of an issued certificate (``pki.choices.CertificateStatus`` values)."""

    VALID = "valid"
    ON_HOLD = "on_hold"
    REVOKED = "revoked"


class OcspStatus(enum.StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Listing:
    """Why and since when a certificate is listed (a CRL entry, an OCSP ``revoked``)."""

    since: dt.datetime
    reason: RevocationReason


def listing_of(
    status: str,
    *,
    revoked_at: dt.datetime | None,
    revocation_reason: str,
    hold_since: dt.datetime | None,
) -> Listing | None:
    """The listing of a certificate in ``status``; ``None`` while it is valid.

    A hold is listed as ``certificateHold`` since the hold began; a revocation with its stored
    reason since it was revoked.
    """
    if status == CertificateState.REVOKED:
        if revoked_at is None:
            raise ValueError("a revoked certificate has a revocation time")
        return Listing(revoked_at, RevocationReason(revocation_reason))
    if status == CertificateState.ON_HOLD:
        if hold_since is None:
            raise ValueError("a certificate on hold has a hold time")
        return Listing(hold_since, RevocationReason.CERTIFICATE_HOLD)
    if status == CertificateState.VALID:
        return None
    raise ValueError(f"unknown certificate status {status!r}")


def crl_entry_of(
    serial: int,
    status: str,
    *,
    revoked_at: dt.datetime | None,
    revocation_reason: str,
    hold_since: dt.datetime | None,
) -> bytes | None:
    """The DER CRL entry of a certificate in ``status``; ``None`` when it is not listed."""
    listing = listing_of(
        status, revoked_at=revoked_at, revocation_reason=revocation_reason, hold_since=hold_since
    )
    if listing is None:
        return None
    return crl_der.crl_entry(serial, listing.since, listing.reason)


def ocsp_status_of(
    status: str,
    *,
    revoked_at: dt.datetime | None,
    revocation_reason: str,
    hold_since: dt.datetime | None,
) -> tuple[OcspStatus, dt.datetime | None, RevocationReason | None]:
    """``(status, revocation time, reason)`` of the OCSP answer for a certificate in ``status``."""
    listing = listing_of(
        status, revoked_at=revoked_at, revocation_reason=revocation_reason, hold_since=hold_since
    )
    if listing is None:
        return OcspStatus.GOOD, None, None
    return OcspStatus.REVOKED, listing.since, listing.reason
