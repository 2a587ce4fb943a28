"""The CPS3 inventory, as imported from the legacy export and reconciled with the registry.

``Cps3Card`` holds the latest state the export gave for each card and its two certificates
(upserted by chip serial); ``Cps3Exception`` is the reconciliation's current report, rebuilt by
each import; ``Cps3Import`` records each import. The staging table the export is copied into is
raw SQL (``cps3_staging`` and its view ``cps3_staging_checked``, migration 0001): only SQL reads
them.
"""

from __future__ import annotations

from django.db import models

from cps3.choices import ExceptionKind, LegacyCardStatus, LegacyCertificateStatus


class Cps3Import(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    sha256 = models.CharField(max_length=64)
    filename = models.CharField(max_length=255)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    requested_by = models.CharField(max_length=150)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    rows = models.PositiveIntegerField(default=0)
    inserted = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    exceptions = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ("-started_at",)

    def __str__(self) -> str:
        return f"import #{self.pk} {self.filename} ({self.status})"


class Cps3Card(models.Model):
    """A CPS3 card as the latest export gave it, with its two certificates, matched to the
    registry's holder and, where our CAs issued them, to our certificates."""

    chip_serial = models.CharField(max_length=32, unique=True)
    national_id = models.CharField(max_length=40)
    last_name = models.CharField(max_length=100)
    first_name = models.CharField(max_length=100)
    birth_date = models.DateField(null=True, blank=True)
    profession = models.CharField(max_length=2)
    departement = models.CharField(max_length=3, blank=True)
    card_type = models.CharField(max_length=3)
    issued_on = models.DateField()
    expires_on = models.DateField()
    status = models.CharField(max_length=10, choices=LegacyCardStatus.choices)
    holder = models.ForeignKey(
        "cms.Holder", on_delete=models.PROTECT, related_name="cps3_cards", null=True, blank=True
    )
    # Its two certificates (the export's columns), matched to ours where our CAs issued them.
    auth_issuer = models.CharField(max_length=512, blank=True)
    auth_serial = models.CharField(max_length=64, blank=True, help_text="hexadecimal")
    auth_not_after = models.DateField(null=True, blank=True)
    auth_status = models.CharField(
        max_length=8, choices=LegacyCertificateStatus.choices, blank=True
    )
    auth_external = models.BooleanField(default=False, help_text="issued by a CA not ours")
    auth_certificate = models.ForeignKey(
        "pki.Certificate",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        db_index=False,
    )
    sign_issuer = models.CharField(max_length=512, blank=True)
    sign_serial = models.CharField(max_length=64, blank=True, help_text="hexadecimal")
    sign_not_after = models.DateField(null=True, blank=True)
    sign_status = models.CharField(
        max_length=8, choices=LegacyCertificateStatus.choices, blank=True
    )
    sign_external = models.BooleanField(default=False, help_text="issued by a CA not ours")
    sign_certificate = models.ForeignKey(
        "pki.Certificate",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        db_index=False,
    )
    row_digest = models.CharField(max_length=32, help_text="md5 of the row's fields, for upserts")
    # Provenance only: no constraint trigger for each of 1.5 million rows an import writes.
    last_import = models.ForeignKey(
        Cps3Import, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ("chip_serial",)
        indexes = (
            models.Index(fields=("profession", "departement"), name="cps3_card_prof_dept_idx"),
        )

    def __str__(self) -> str:
        return f"CPS3 {self.chip_serial}"


class Cps3Exception(models.Model):
    kind = models.CharField(max_length=24, choices=ExceptionKind.choices)
    line = models.PositiveIntegerField(null=True, blank=True, help_text="line in the last file")
    chip_serial = models.CharField(max_length=64, blank=True)
    national_id = models.CharField(max_length=64, blank=True)
    detail = models.TextField()
    found_by = models.ForeignKey(Cps3Import, on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ("kind", "line", "id")
        indexes = (models.Index(fields=("kind",), name="cps3_exception_kind_idx"),)

    def __str__(self) -> str:
        return f"{self.kind} {self.chip_serial or self.national_id}"
