"""Choices of the PKI app."""

from __future__ import annotations

from django.db import models

from pki.domain.reasons import RevocationReason
from pki.domain.status import CertificateState


class CaKind(models.TextChoices):
    ROOT = "root", "Root CA"
    ISSUING = "issuing", "Issuing CA"


class CertificateStatus(models.TextChoices):
    """Stored statuses: the values of :class:`pki.domain.status.CertificateState`."""

    VALID = CertificateState.VALID.value, "Valid"
    ON_HOLD = CertificateState.ON_HOLD.value, "On hold (certificateHold)"
    REVOKED = CertificateState.REVOKED.value, "Revoked"


class CrlKind(models.TextChoices):
    FULL = "full", "Full CRL"
    DELTA = "delta", "Delta CRL"


class CertificateReason(models.TextChoices):
    """Stored revocation reasons: the values of :class:`pki.domain.reasons.RevocationReason`."""

    UNSPECIFIED = RevocationReason.UNSPECIFIED.value, "unspecified"
    KEY_COMPROMISE = RevocationReason.KEY_COMPROMISE.value, "keyCompromise"
    CA_COMPROMISE = RevocationReason.CA_COMPROMISE.value, "cACompromise"
    AFFILIATION_CHANGED = RevocationReason.AFFILIATION_CHANGED.value, "affiliationChanged"
    SUPERSEDED = RevocationReason.SUPERSEDED.value, "superseded"
    CESSATION_OF_OPERATION = RevocationReason.CESSATION_OF_OPERATION.value, "cessationOfOperation"
    CERTIFICATE_HOLD = RevocationReason.CERTIFICATE_HOLD.value, "certificateHold"
    PRIVILEGE_WITHDRAWN = RevocationReason.PRIVILEGE_WITHDRAWN.value, "privilegeWithdrawn"
    AA_COMPROMISE = RevocationReason.AA_COMPROMISE.value, "aACompromise"
