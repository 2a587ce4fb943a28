"""The CPS3 inventory, as imported from the legacy export and reconciled with the registry.

``Cps3Card`` holds the latest state the export gave for each card and its two certificates
(upserted by chip serial); ``Cps3Exception`` is the reconciliation's current report, brought up
to date by each import; ``Cps3Import`` records each import. The staging table the export is
copied into is raw SQL (``cps3_staging`` and its view ``cps3_staging_checked``, migration 0001):
only SQL reads them.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import pgettext_lazy

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
    # What the exceptions report was computed against (docs/adr/0030): the next import rebuilds
    # only what can have changed since. ``report_on``: the day (``current_date``) cards were found
    # expired on; ``report_horizon``: the oldest transaction (64-bit id) still running when the
    # report read the registry and the PKI, so every row written from there on is looked at again
    # (NULL: unknown, or the inventory or the report was written outside an import since; the next
    # import rebuilds the whole report).
    report_on = models.DateField(null=True, blank=True)
    report_horizon = models.BigIntegerField(null=True, blank=True)
    # The database cluster whose transaction ids the horizon counts (pg_control_system()).
    report_cluster = models.BigIntegerField(null=True, blank=True)
    report_incremental = models.BooleanField(
        default=False, help_text="only what could have changed since the previous import was redone"
    )

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
    row_digest = models.CharField(
        max_length=32, help_text="hash of the row's fields as exported: unchanged rows are skipped"
    )
    # Provenance only: no constraint trigger for each of 1.5 million rows an import writes.
    last_import = models.ForeignKey(
        Cps3Import, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ("chip_serial",)
        indexes = (
            models.Index(fields=("profession", "departement"), name="cps3_card_prof_dept_idx"),
            # The few cards whose holder the registry did not know: each import looks them up
            # again (holders registered since), without reading the whole inventory.
            models.Index(
                fields=("national_id",),
                name="cps3_card_holder_unknown_idx",
                condition=models.Q(holder__isnull=True),
            ),
        )

    def __str__(self) -> str:
        return f"CPS3 {self.chip_serial}"


class Cps3Exception(models.Model):
    class Scope(models.TextChoices):
        """What a row depends on, hence what an import redoes it for (docs/adr/0030)."""

        FILE = "file", "A row of the last file"
        GROUP = "group", "The cards of one national identifier"
        CARD = "card", "One card, its holder and its certificates"

    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.CARD)
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


class Wave(models.Model):
    """A migration wave: the CPS3 holders a filter selects, planned at a daily rate at one site.

    draft (planned and re-planned at will) → awaiting approval (a second person, dual control) →
    running (a task creates the CPS4 requests day by day) ⇄ paused → completed; or cancelled.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", pgettext_lazy("wave status", "Draft")
        AWAITING_APPROVAL = (
            "awaiting_approval",
            pgettext_lazy("wave status", "Awaiting a second person"),
        )
        RUNNING = "running", pgettext_lazy("wave status", "Running")
        PAUSED = "paused", pgettext_lazy("wave status", "Paused")
        COMPLETED = "completed", pgettext_lazy("wave status", "Completed")
        CANCELLED = "cancelled", pgettext_lazy("wave status", "Cancelled")

    name = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    professions = models.JSONField(default=list, blank=True, help_text="codes; empty: all")
    departements = models.JSONField(default=list, blank=True, help_text="codes; empty: all")
    expires_from = models.DateField(null=True, blank=True, help_text="CPS3 expiry, from")
    expires_to = models.DateField(null=True, blank=True, help_text="CPS3 expiry, up to")
    pool = models.ForeignKey(
        "cms.SitePool", on_delete=models.PROTECT, related_name="+", help_text="the site"
    )
    product = models.ForeignKey("cms.Product", on_delete=models.PROTECT, related_name="+")
    daily_capacity = models.PositiveIntegerField()
    start_on = models.DateField()
    planned = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    approved_by = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"wave {self.name} ({self.status})"


class WaveMember(models.Model):
    """One holder of a wave, the day their request is due, and the request once created."""

    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="members")
    cps3_card = models.ForeignKey(Cps3Card, on_delete=models.PROTECT, related_name="+")
    holder = models.ForeignKey("cms.Holder", on_delete=models.PROTECT, related_name="+")
    departement = models.CharField(max_length=3, blank=True)
    planned_on = models.DateField()
    active = models.BooleanField(default=True, help_text="false once its wave is cancelled")
    request = models.OneToOneField(
        "cms.CardRequest", on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )

    class Meta:
        ordering = ("planned_on", "id")
        constraints = (
            # A holder is in one live wave at most: two waves never ask twice for the same card.
            models.UniqueConstraint(
                fields=("holder",),
                condition=models.Q(active=True),
                name="cps3_wavemember_one_live_wave_per_holder",
            ),
        )
        indexes = (
            models.Index(
                fields=("wave", "planned_on"),
                name="cps3_member_due_idx",
                condition=models.Q(request__isnull=True, active=True),
            ),
        )

    def __str__(self) -> str:
        return f"{self.wave_id}:{self.holder_id} on {self.planned_on}"


class WaveSummary(models.Model):
    """The dashboard's numbers for one wave and département, kept up to date by the services
    that change them and refreshed in sets by a periodic task (never counted per page view)."""

    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="summaries")
    departement = models.CharField(max_length=3, blank=True)
    planned = models.PositiveIntegerField(default=0)
    requested = models.PositiveIntegerField(default=0)
    personalized = models.PositiveIntegerField(default=0)
    activated = models.PositiveIntegerField(default=0)
    cps3_revoked = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=("wave", "departement"), name="cps3_wavesummary_one_per_dept"
            ),
        )

    def __str__(self) -> str:
        return f"{self.wave_id}/{self.departement}"


class WaveProgress(models.Model):
    """A daily snapshot of a wave's totals: the progress chart over time."""

    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="progress")
    day = models.DateField()
    planned = models.PositiveIntegerField(default=0)
    requested = models.PositiveIntegerField(default=0)
    personalized = models.PositiveIntegerField(default=0)
    activated = models.PositiveIntegerField(default=0)
    cps3_revoked = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("wave", "day")
        constraints = (
            models.UniqueConstraint(fields=("wave", "day"), name="cps3_waveprogress_one_per_day"),
        )

    def __str__(self) -> str:
        return f"{self.wave_id} {self.day}"
