"""Choices of the CPS3 inventory: the legacy card and certificate states, the exception kinds."""

from __future__ import annotations

from django.db import models
from django.utils.translation import pgettext_lazy


class LegacyCardStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class LegacyCertificateStatus(models.TextChoices):
    VALID = "valid", "Valid"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class ExceptionKind(models.TextChoices):
    INVALID_ROW = (
        "invalid_row",
        pgettext_lazy(
            "migration anomaly", "Row not readable (a required field is missing or malformed)"
        ),
    )
    DUPLICATE_SERIAL = (
        "duplicate_serial",
        pgettext_lazy("migration anomaly", "Chip serial on several rows of the file"),
    )
    HOLDER_UNKNOWN = (
        "holder_unknown",
        pgettext_lazy("migration anomaly", "Holder unknown to the registry"),
    )
    IDENTITY_CONFLICT = (
        "identity_conflict",
        pgettext_lazy("migration anomaly", "Same national identifier, different identity"),
    )
    SEVERAL_ACTIVE = (
        "several_active",
        pgettext_lazy("migration anomaly", "Holder with several active CPS3"),
    )
    CARD_REVOKED = "card_revoked", pgettext_lazy("migration anomaly", "Card already revoked")
    CARD_EXPIRED = "card_expired", pgettext_lazy("migration anomaly", "Card already expired")
    CERTIFICATE_UNKNOWN = (
        "certificate_unknown",
        pgettext_lazy("migration anomaly", "Certificate unknown to our PKI"),
    )
    CERTIFICATE_MISMATCH = (
        "certificate_mismatch",
        pgettext_lazy("migration anomaly", "Certificate differs from our PKI's record"),
    )
