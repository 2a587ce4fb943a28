"""CAs, issued certificates, published CRLs and pre-signed OCSP responses."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from pki.choices import CaKind, CertificateReason, CertificateStatus, CrlKind
from pki.fields import SerialNumberField


class CertificateAuthority(models.Model):
    """A CA of the hierarchy. Its key lives in a key backend; the row holds only alias + handle."""

    short_name = models.CharField(max_length=40, unique=True)
    common_name = models.CharField(max_length=128)
    kind = models.CharField(max_length=16, choices=CaKind.choices)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT)
    key_backend = models.CharField(max_length=64)
    key_handle = models.CharField(max_length=200)
    certificate_der = models.BinaryField()
    # SHA-1 CertID hashes (RFC 5019): how an OCSP request names its issuer.
    issuer_name_hash = models.CharField(max_length=40)
    issuer_key_hash = models.CharField(max_length=40, unique=True)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    profiles = models.JSONField(default=list, help_text="profiles this CA issues")
    policies = models.JSONField(default=dict, help_text="profile -> [{oid, cps_uri}]")
    crl_next_update_hours = models.PositiveIntegerField(default=24)
    delta_crl_next_update_hours = models.PositiveIntegerField(default=4)
    ocsp_validity_hours = models.PositiveIntegerField(default=24)
    crl_number = models.PositiveBigIntegerField(default=0, help_text="last CRL number used")
    ocsp_responder = models.ForeignKey(
        "Certificate", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    ocsp_key_handle = models.CharField(max_length=200, blank=True)
    # An issuing CA's own certificate as a row under its parent: the parent's CRL and OCSP list
    # it when it is revoked (issue 11 §6). A root has none.
    certificate = models.OneToOneField(
        "Certificate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="authority_of",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind=CaKind.ROOT, parent__isnull=True)
                | Q(kind=CaKind.ISSUING, parent__isnull=False),
                name="%(app_label)s_%(class)s_root_has_no_parent",
            ),
        ]

    def __str__(self) -> str:
        return self.short_name


class Certificate(models.Model):
    """An issued certificate, with its status and a snapshot of the holder data it carries."""

    issuer = models.ForeignKey(
        CertificateAuthority, on_delete=models.PROTECT, related_name="certificates"
    )
    serial = SerialNumberField()
    profile = models.CharField(max_length=32)
    status = models.CharField(
        max_length=16, choices=CertificateStatus.choices, default=CertificateStatus.VALID
    )
    subject = models.CharField(max_length=512)
    national_id = models.CharField(max_length=64, blank=True, db_index=True)
    holder = models.JSONField(default=dict, blank=True)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    der = models.BinaryField()
    fingerprint_sha256 = models.CharField(max_length=64, unique=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revocation_reason = models.CharField(
        max_length=32, choices=CertificateReason.choices, blank=True
    )
    hold_since = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField()
    # The DER of this certificate's CRL entry while it is listed (revoked or on hold), written by
    # the status-changing services in their transaction; a CRL concatenates them (ADR 0003).
    crl_entry = models.BinaryField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "serial"], name="%(app_label)s_%(class)s_unique_serial_per_issuer"
            ),
            models.CheckConstraint(
                condition=~Q(status=CertificateStatus.REVOKED)
                | (Q(revoked_at__isnull=False) & ~Q(revocation_reason="")),
                name="%(app_label)s_%(class)s_revoked_has_time_and_reason",
            ),
            models.CheckConstraint(
                condition=~Q(status=CertificateStatus.ON_HOLD) | Q(hold_since__isnull=False),
                name="%(app_label)s_%(class)s_on_hold_has_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["issuer", "status_changed_at"], name="pki_cert_issuer_changed_idx"
            ),
            models.Index(
                fields=["issuer", "status"],
                name="pki_cert_listed_idx",
                condition=~Q(status="valid"),
            ),
            # certificates expiring soon (the registry's daily expiry sweep)
            models.Index(
                fields=["not_after"],
                name="pki_cert_valid_expiry_idx",
                condition=Q(status="valid"),
            ),
            # listed rows whose entry was not stored (written by other code): encoded at
            # publication; normally empty, so finding them costs nothing
            models.Index(
                fields=["issuer"],
                name="pki_cert_listed_no_entry_idx",
                condition=~Q(status="valid") & Q(crl_entry__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.profile} {int(self.serial):x} ({self.status})"

    @property
    def serial_int(self) -> int:
        return int(self.serial)


class CrlPublication(models.Model):
    """One signed CRL (full or delta), kept as published; the newest of each kind is served."""

    authority = models.ForeignKey(
        CertificateAuthority, on_delete=models.PROTECT, related_name="crls"
    )
    kind = models.CharField(max_length=8, choices=CrlKind.choices)
    number = models.PositiveBigIntegerField()
    base_number = models.PositiveBigIntegerField(null=True, blank=True)
    this_update = models.DateTimeField()
    next_update = models.DateTimeField()
    as_of = models.DateTimeField(help_text="status changes up to this instant are included")
    entry_count = models.PositiveIntegerField()
    der = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["authority", "number"],
                name="%(app_label)s_%(class)s_unique_number_per_authority",
            ),
            models.CheckConstraint(
                condition=Q(kind=CrlKind.FULL, base_number__isnull=True)
                | Q(kind=CrlKind.DELTA, base_number__isnull=False),
                name="%(app_label)s_%(class)s_delta_has_base",
            ),
        ]
        indexes = [models.Index(fields=["authority", "kind", "-number"], name="pki_crl_latest_idx")]


class OcspResponse(models.Model):
    """The pre-signed OCSP answer for one certificate, refreshed on every status change."""

    certificate = models.OneToOneField(
        Certificate, on_delete=models.CASCADE, related_name="ocsp_response"
    )
    authority = models.ForeignKey(CertificateAuthority, on_delete=models.PROTECT, related_name="+")
    serial = SerialNumberField()
    status = models.CharField(max_length=16, choices=CertificateStatus.choices)
    this_update = models.DateTimeField()
    next_update = models.DateTimeField()
    der = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["authority", "serial"],
                name="%(app_label)s_%(class)s_unique_serial_per_authority",
            ),
        ]


class StatusSigner(models.Model):
    """A key certified under the technical CA with the ``contactless_status`` profile: it signs
    the contactless deny list (ADR 0021). The newest valid one signs; older keys stay in the
    backend so lists they signed remain verifiable."""

    certificate = models.OneToOneField(Certificate, on_delete=models.PROTECT, related_name="+")
    key_backend = models.CharField(max_length=64)
    key_handle = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"status signer {int(self.certificate.serial):x}"


class AuditAnchor(models.Model):
    """The audit chain head signed with the audit key (``pki.services.anchor``), as published."""

    seq = models.BigIntegerField()
    head_hash = models.CharField(max_length=64)
    signed_at = models.CharField(max_length=32, help_text="as signed (ISO 8601, UTC)")
    key_backend = models.CharField(max_length=64)
    key_handle = models.CharField(max_length=200)
    document = models.JSONField(help_text="the published anchor (core.anchor)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["-seq"], name="pki_anchor_latest_idx")]
