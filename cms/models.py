"""Registry models: holders, products, stock, cards, certificates links, deny list, requests."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import pgettext_lazy

from cms.choices import (
    ApprovalStatus,
    CardStatus,
    CardType,
    DenyChange,
    DenyListKind,
    DenyReason,
    HolderStatus,
    LossReason,
    ProductStatus,
    Profession,
    RequestKind,
    RequestStatus,
    RevokeReason,
)

# States in which a card counts as the holder's card in service (one per holder and card type).
IN_SERVICE = (CardStatus.ACTIVE, CardStatus.SUSPENDED)


class Holder(models.Model):
    """A health professional (or establishment staff) registered for a card."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    national_id = models.CharField(max_length=40, unique=True, help_text="idNat_PS: prefix + id")
    last_name = models.CharField(max_length=100)
    first_name = models.CharField(max_length=100)
    profession = models.CharField(max_length=2, choices=Profession.choices)
    card_type = models.CharField(max_length=3, choices=CardType.choices, default=CardType.CPS)
    status = models.CharField(
        max_length=16, choices=HolderStatus.choices, default=HolderStatus.ACTIVE
    )
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    postal_code = models.CharField(max_length=10, blank=True)
    city = models.CharField(max_length=100, blank=True)
    country = models.CharField(
        max_length=2, default="FR", help_text="ISO 3166-1 alpha-2 code of the postal address"
    )
    departement = models.CharField(max_length=3, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("last_name", "first_name", "national_id")
        indexes = (
            models.Index(fields=("profession", "departement"), name="cms_holder_prof_dept_idx"),
        )
        # Name search: trigram GIN indexes on UPPER(last_name) and UPPER(first_name), created by
        # a PostgreSQL-only migration (cms 0002), serve the filters' icontains / istartswith.

    def __str__(self) -> str:
        return f"{self.last_name} {self.first_name} ({self.national_id})"


class Product(models.Model):
    """A versioned card product: points to a ``cards.products`` definition and snapshots it."""

    name = models.CharField(max_length=32)
    version = models.CharField(max_length=16)
    status = models.CharField(max_length=8, choices=ProductStatus.choices)
    validity_years = models.PositiveSmallIntegerField()
    requires_second_approval = models.BooleanField(
        default=False, help_text="requests for this product wait for a second approver"
    )
    definition = models.JSONField(help_text="snapshot of the cards.products definition")
    definition_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name", "version")
        constraints = (
            models.UniqueConstraint(
                fields=("name", "version"), name="%(app_label)s_%(class)s_unique_name_version"
            ),
        )

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class SitePool(models.Model):
    """A site's pool of blank cards (a personalization centre)."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    low_stock_threshold = models.PositiveIntegerField(
        default=0, help_text="alert on the console's home below this many blank cards (0: none)"
    )

    class Meta:
        ordering = ("code",)

    def __str__(self) -> str:
        return self.code


class StockBatch(models.Model):
    """A vendor delivery of blank cards, registered from the vendor's batch file."""

    vendor = models.CharField(max_length=64)
    reference = models.CharField(max_length=64)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="batches")
    file_sha256 = models.CharField(max_length=64)
    card_count = models.PositiveIntegerField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-received_at",)
        constraints = (
            models.UniqueConstraint(
                fields=("vendor", "reference"), name="%(app_label)s_%(class)s_unique_reference"
            ),
        )

    def __str__(self) -> str:
        return f"{self.vendor}/{self.reference}"


class Card(models.Model):
    """A physical card, from blank stock to destruction (states: ``cms.lifecycle``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    card_number = models.CharField(max_length=20, unique=True, null=True, blank=True)
    chip_serial = models.CharField(max_length=32, unique=True)
    desfire_uid = models.CharField(max_length=14, unique=True, null=True, blank=True)
    transport_key_version = models.PositiveSmallIntegerField(default=0)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="cards")
    batch = models.ForeignKey(
        StockBatch, on_delete=models.PROTECT, related_name="cards", null=True, blank=True
    )
    pool = models.ForeignKey(
        SitePool, on_delete=models.PROTECT, related_name="cards", null=True, blank=True
    )
    holder = models.ForeignKey(
        Holder, on_delete=models.PROTECT, related_name="cards", null=True, blank=True
    )
    card_type = models.CharField(max_length=3, choices=CardType.choices, blank=True)
    status = models.CharField(
        max_length=16, choices=CardStatus.choices, default=CardStatus.IN_STOCK, db_index=True
    )
    revoke_reason = models.CharField(max_length=16, choices=RevokeReason.choices, blank=True)
    # A legacy card kept in service while its holder's CPS4 is issued (DESIGN.md §7).
    migration_overlap = models.BooleanField(default=False)
    issued_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # The admin (offline unblock) key version written at personalization (docs/offline-unblock.md).
    admin_key_version = models.PositiveSmallIntegerField(null=True, blank=True)
    # Last PIN/PUK try counters a station or cpsclient reported (never a try consumed to read them).
    pin_tries_left = models.PositiveSmallIntegerField(null=True, blank=True)
    puk_tries_left = models.PositiveSmallIntegerField(null=True, blank=True)
    pin_status_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "id")
        constraints = (
            models.UniqueConstraint(
                fields=("holder", "card_type"),
                condition=Q(status__in=IN_SERVICE, migration_overlap=False),
                name="%(app_label)s_%(class)s_one_active_per_holder_and_type",
            ),
            models.CheckConstraint(
                condition=Q(card_number__isnull=True) | Q(card_number__regex=r"^8025000001\d{10}$"),
                name="%(app_label)s_%(class)s_card_number_format",
            ),
            models.CheckConstraint(
                condition=Q(holder__isnull=False)
                | Q(status__in=("IN_STOCK", "SPOILED", "DESTROYED")),
                name="%(app_label)s_%(class)s_holder_after_allocation",
            ),
        )
        indexes = (
            models.Index(fields=("pool", "status"), name="cms_card_pool_status_idx"),
            # The daily expiry sweep: cards in service by end date (cms.services.expiry).
            models.Index(
                fields=("expires_at",),
                name="cms_card_live_expiry_idx",
                condition=Q(status__in=("ISSUED", "ACTIVE", "SUSPENDED")),
            ),
        )

    def __str__(self) -> str:
        return self.card_number or self.chip_serial


class CardCertificate(models.Model):
    """The cms-side link from a card to its certificates (pki knows nothing of cards)."""

    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="certificate_links")
    slot = models.CharField(max_length=16, help_text="key slot of the product: auth, sign")
    certificate = models.OneToOneField(
        "pki.Certificate", on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=("card", "slot"), name="%(app_label)s_%(class)s_one_per_slot"
            ),
        )

    def __str__(self) -> str:
        return f"{self.card_id}:{self.slot}"


class DenyListEntry(models.Model):
    """A contactless credential that access-control readers must refuse."""

    card = models.OneToOneField(Card, on_delete=models.PROTECT, related_name="deny_entry")
    desfire_uid = models.CharField(max_length=14, blank=True, db_index=True)
    card_number = models.CharField(max_length=20, blank=True, db_index=True)
    reason = models.CharField(max_length=16, choices=DenyReason.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at",)

    def __str__(self) -> str:
        return f"deny {self.desfire_uid or self.card_number}"


class DenyListChangeRow(models.Model):
    """One change of the deny list, written with the entry it adds or removes. The publication
    task gives the pending ones (``version`` null) the next list version: versions follow the
    order of publication, not of commit, so no delta can miss a change (ADR 0021)."""

    id = models.BigAutoField(primary_key=True)
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="+")
    change = models.CharField(max_length=8, choices=DenyChange.choices)
    desfire_uid = models.CharField(max_length=14, blank=True)
    card_number = models.CharField(max_length=20, blank=True)
    reason = models.CharField(max_length=16, choices=DenyReason.choices, blank=True)
    version = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)
        indexes = (
            models.Index(fields=("version", "id"), name="cms_denychange_version_idx"),
            models.Index(
                fields=("id",), name="cms_denychange_pending_idx", condition=Q(version__isnull=True)
            ),
        )

    def __str__(self) -> str:
        return f"{self.change} {self.desfire_uid or self.card_number}"


class DenyListPublication(models.Model):
    """A signed deny list as published (CMS SignedData over the canonical body): the full list
    of a version, and the delta from the version before it."""

    version = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=8, choices=DenyListKind.choices)
    base_version = models.PositiveBigIntegerField(null=True, blank=True)
    issued_at = models.DateTimeField()
    next_update = models.DateTimeField()
    entry_count = models.PositiveIntegerField(help_text="full: entries; delta: changes")
    signer_serial = models.CharField(max_length=64)
    der = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-version", "kind")
        constraints = (
            models.UniqueConstraint(
                fields=("version", "kind"), name="%(app_label)s_%(class)s_unique_version_kind"
            ),
            models.CheckConstraint(
                condition=Q(kind=DenyListKind.FULL, base_version__isnull=True)
                | Q(kind=DenyListKind.DELTA, base_version__isnull=False),
                name="%(app_label)s_%(class)s_delta_has_base",
            ),
        )

    def __str__(self) -> str:
        return f"deny list {self.kind} v{self.version}"


class RelyingParty(models.Model):
    """An organisation that checks cards contactlessly with the DESFire read key (key 1): it
    receives the read master encrypted to its RSA public key, under dual control (ADR 0021)."""

    name = models.CharField(max_length=100, unique=True)
    contact = models.CharField(max_length=200, blank=True)
    public_key_pem = models.TextField(help_text="RSA public key the read master is wrapped to")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class RelyingPartyKeyExport(models.Model):
    """One export of the read master to a relying party: RSA-OAEP (SHA-256) to its key."""

    relying_party = models.ForeignKey(
        RelyingParty, on_delete=models.PROTECT, related_name="exports"
    )
    key_label = models.CharField(max_length=64)
    wrapped = models.BinaryField()
    key_check_value = models.CharField(max_length=6, help_text="AES-CMAC(key, 0^16)[:3], hex")
    act_id = models.PositiveBigIntegerField(help_text="the dual-control act that approved it")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.relying_party} {self.key_label}"


class CardTransitionApproval(models.Model):
    """A dual-control transition requested by one person, applied when another approves it."""

    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="pending_transitions")
    transition = models.CharField(max_length=32)
    reason = models.CharField(max_length=16, blank=True)
    status = models.CharField(
        max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("created_at",)
        constraints = (
            models.UniqueConstraint(
                fields=("card", "transition"),
                condition=Q(status="pending"),
                name="%(app_label)s_%(class)s_one_pending_per_card_and_transition",
            ),
        )

    def __str__(self) -> str:
        return f"{self.transition} {self.card_id} ({self.status})"


class CardRequest(models.Model):
    """A request for a card: new, renewal, replacement or migration."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=RequestKind.choices)
    status = models.CharField(
        max_length=16, choices=RequestStatus.choices, default=RequestStatus.DRAFT, db_index=True
    )
    holder = models.ForeignKey(Holder, on_delete=models.PROTECT, related_name="requests")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="requests")
    replaces = models.ForeignKey(
        Card, on_delete=models.PROTECT, related_name="replaced_by_requests", null=True, blank=True
    )
    card = models.OneToOneField(
        Card, on_delete=models.PROTECT, related_name="request", null=True, blank=True
    )
    pool = models.ForeignKey(
        SitePool, on_delete=models.PROTECT, related_name="requests", null=True, blank=True
    )
    requires_second_approval = models.BooleanField(default=False)
    # A replacement after loss or theft: stations serve it before ordinary requests.
    expedited = models.BooleanField(default=False)
    loss_reason = models.CharField(
        max_length=8, choices=LossReason.choices, blank=True, help_text="why a card is replaced"
    )
    identity_check = models.CharField(
        max_length=200, blank=True, help_text="how the holder's identity was checked"
    )
    # A temporary card lent until the replacement is activated, then revoked (superseded).
    temporary_card = models.ForeignKey(
        Card,
        on_delete=models.PROTECT,
        related_name="temporary_for_requests",
        null=True,
        blank=True,
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    requested_by_label = models.CharField(max_length=150)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    note = models.CharField(max_length=500, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("created_at", "id")
        constraints = (
            models.UniqueConstraint(
                fields=("holder", "kind", "product"),
                condition=Q(
                    status__in=(
                        "draft",
                        "submitted",
                        "approved",
                        "queued",
                        "personalizing",
                        "failed",
                    )
                ),
                name="%(app_label)s_%(class)s_one_open_per_holder_kind_product",
            ),
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=models.F("requested_by")),
                name="%(app_label)s_%(class)s_no_self_approval",
            ),
        )

    def __str__(self) -> str:
        return f"{self.kind} {self.holder_id} ({self.status})"


# --- personalization (cms.personalization) and PIN mailers (cms.mailers) ----------------------

from cms.mailers.choices import MailerStatus, PrintRunStatus  # noqa: E402
from cms.mailers.wording import LetterKind  # noqa: E402
from cms.personalization.choices import (  # noqa: E402 - the registry models come first
    JobStatus,
    SessionMode,
    SessionStatus,
    StationStatus,
)


class Station(models.Model):
    """A personalization station: a machine at a site, enrolled once with a one-time code."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=64)
    site = models.ForeignKey(SitePool, on_delete=models.PROTECT, related_name="stations")
    status = models.CharField(
        max_length=8, choices=StationStatus.choices, default=StationStatus.PENDING
    )
    account = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="station",
        help_text="the machine account its API token belongs to",
    )
    certificate_serial = models.CharField(max_length=64, blank=True)
    certificate = models.ForeignKey(
        "pki.Certificate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="the station_client certificate in force (revoked when replaced or disabled)",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    enrolled_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("site", "name")
        constraints = (
            models.UniqueConstraint(
                fields=("site", "name"), name="%(app_label)s_%(class)s_unique_name_per_site"
            ),
        )

    def __str__(self) -> str:
        return f"{self.site_id}/{self.name}"


class StationEnrollmentCode(models.Model):
    """A one-time enrollment code, stored as its SHA-256 digest."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="codes")
    digest = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # A code asked for by a person works once a second security officer approves it (the
    # dual-control act ``station.enrollment``); one made by a system caller is approved at once.
    approval = models.ForeignKey(
        "core.DualControlAct", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"enrollment code for {self.station_id}"


_OPEN_JOB = Q(status__in=("queued", "claimed"))


class PersonalizationJob(models.Model):
    """A queued request's card to write, routed to its site pool, claimed under a lease."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(CardRequest, on_delete=models.PROTECT, related_name="jobs")
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="jobs")
    pool = models.ForeignKey(
        SitePool, on_delete=models.PROTECT, null=True, blank=True, related_name="jobs"
    )
    status = models.CharField(max_length=9, choices=JobStatus.choices, default=JobStatus.QUEUED)
    station = models.ForeignKey(
        Station, on_delete=models.PROTECT, null=True, blank=True, related_name="jobs"
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("created_at",)
        constraints = (
            models.UniqueConstraint(
                fields=("request",),
                condition=_OPEN_JOB,
                name="%(app_label)s_%(class)s_one_open_per_request",
            ),
            models.CheckConstraint(
                condition=~Q(status="claimed")
                | Q(station__isnull=False, lease_expires_at__isnull=False),
                name="%(app_label)s_%(class)s_claimed_has_lease",
            ),
        )
        indexes = (models.Index(fields=("status", "pool"), name="cms_job_status_pool_idx"),)

    def __str__(self) -> str:
        return f"job {self.pk} ({self.status})"


class RelayedSession(models.Model):
    """What every server-driven session relayed by a station keeps of its round trips (issuance,
    new codes): the batch in flight, the card's ATR, counts, the last error and its times."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    seq = models.PositiveIntegerField(default=0, help_text="number of the batch in flight")
    atr = models.CharField(max_length=80, blank=True)
    batches = models.PositiveIntegerField(default=0)
    apdus = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ("-started_at",)


def one_running_per(field: str) -> models.UniqueConstraint:
    """At most one running session per ``field`` (its job, its request)."""
    return models.UniqueConstraint(
        fields=(field,),
        condition=Q(status="running"),
        name=f"%(app_label)s_%(class)s_one_running_per_{field}",
    )


class PersonalizationSession(RelayedSession):
    """One run of a personalization (or rollback) program between the server and a card.

    Between round trips only the program's checkpoint and public inputs are kept; keys are
    re-derived; PIN, PUK and the contactless access credential are sealed together (AES-GCM
    under a key of the card key store) until the session ends and then dropped.
    """

    job = models.ForeignKey(PersonalizationJob, on_delete=models.PROTECT, related_name="sessions")
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="sessions")
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="sessions")
    mode = models.CharField(
        max_length=11, choices=SessionMode.choices, default=SessionMode.PERSONALIZE
    )
    status = models.CharField(
        max_length=11, choices=SessionStatus.choices, default=SessionStatus.RUNNING
    )
    checkpoint = models.JSONField(null=True, blank=True)
    phase = models.CharField(max_length=40, blank=True)
    sealed_secrets = models.BinaryField(null=True, blank=True, editable=False)
    valid_from = models.DateField()
    valid_until = models.DateField()
    key_versions = models.JSONField(default=dict)
    server_cpu_ms = models.FloatField(default=0.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(RelayedSession.Meta):
        constraints = (one_running_per("job"),)
        indexes = (
            # The few ended sessions still holding sealed secrets (a resume may come): what
            # every claim's housekeeping looks for, without reading every session ever run.
            models.Index(
                fields=("job",),
                condition=Q(sealed_secrets__isnull=False) & ~Q(status="running"),
                name="cms_session_sealed_kept_idx",
            ),
        )

    def __str__(self) -> str:
        return f"session {self.pk} ({self.mode}, {self.status})"


class PrintRun(models.Model):
    """A site's unprinted PIN mailers gathered into one PDF for the print shop, reconciled
    against the references of the letters actually enveloped (cms.mailers)."""

    site = models.ForeignKey(
        SitePool, on_delete=models.PROTECT, null=True, blank=True, related_name="print_runs"
    )
    status = models.CharField(
        max_length=10, choices=PrintRunStatus.choices, default=PrintRunStatus.GATHERED
    )
    mailer_count = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150)
    print_count = models.PositiveIntegerField(default=0)
    printed_at = models.DateTimeField(null=True, blank=True)
    reconciled_at = models.DateTimeField(null=True, blank=True)
    reconciled_by = models.CharField(max_length=150, blank=True)
    posted_count = models.PositiveIntegerField(default=0)
    returned_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("-created_at", "-id")

    @property
    def label(self) -> str:
        return f"R{self.pk:06d}"

    def __str__(self) -> str:
        return f"print run {self.label} ({self.status})"


class PinMailer(models.Model):
    """A PIN mailer waiting to be printed and posted: PIN and PUK sealed at rest (AES-GCM under a
    key of the card key store bound to the mailer id) until an operator confirms the letter was
    enveloped; the letter is rendered from them at each print."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    reference = models.CharField(max_length=16, unique=True, help_text="PM-NNNNNNNN-C")
    kind = models.CharField(
        max_length=9,
        choices=[(kind.value, kind.value.replace("_", " ")) for kind in LetterKind],
        default=LetterKind.ISSUANCE.value,
    )
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="pin_mailers")
    request = models.ForeignKey(
        CardRequest, on_delete=models.PROTECT, related_name="pin_mailers", null=True, blank=True
    )
    site = models.ForeignKey(
        SitePool, on_delete=models.PROTECT, null=True, blank=True, related_name="pin_mailers"
    )
    status = models.CharField(
        max_length=8, choices=MailerStatus.choices, default=MailerStatus.QUEUED
    )
    run = models.ForeignKey(
        PrintRun, on_delete=models.PROTECT, null=True, blank=True, related_name="mailers"
    )
    sealed_secrets = models.BinaryField(null=True, blank=True, editable=False)
    seal_key_version = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    print_count = models.PositiveIntegerField(default=0)
    printed_at = models.DateTimeField(null=True, blank=True)
    printed_by = models.CharField(max_length=150, blank=True)
    posted_at = models.DateTimeField(null=True, blank=True)
    posted_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ("created_at", "id")
        constraints = (
            models.UniqueConstraint(
                fields=("card",),
                condition=Q(kind__in=("issuance", "renewal")),
                name="%(app_label)s_%(class)s_one_issuance_per_card",
            ),
            # Posted and voided are the only states without the sealed codes, and both are final.
            models.CheckConstraint(
                condition=Q(status__in=("posted", "voided"), sealed_secrets__isnull=True)
                | (~Q(status__in=("posted", "voided")) & Q(sealed_secrets__isnull=False)),
                name="%(app_label)s_%(class)s_sealed_until_posted",
            ),
            models.CheckConstraint(
                condition=~Q(status="in_run") | Q(run__isnull=False),
                name="%(app_label)s_%(class)s_in_run_has_run",
            ),
        )
        indexes = (
            models.Index(
                fields=("site", "created_at"),
                condition=Q(status="queued"),
                name="cms_pinmailer_queued_idx",
            ),
        )

    def __str__(self) -> str:
        return f"PIN mailer {self.reference}"


class RenewalInvitation(models.Model):
    """A card whose certificates expire before it does, invited to renew them on the card (the
    daily expiry sweep, cms.services.expiry). ``done`` once the card holds no valid certificate
    expiring by ``certificates_not_after`` any more."""

    class Status(models.TextChoices):
        INVITED = "invited", "Invited"
        DONE = "done", "Done"

    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="renewal_invitations")
    certificates_not_after = models.DateTimeField(
        help_text="the earliest expiry of its certificates"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.INVITED)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("certificates_not_after", "id")
        constraints = (
            models.UniqueConstraint(
                fields=("card", "certificates_not_after"),
                name="%(app_label)s_%(class)s_one_per_card_and_expiry",
            ),
        )
        indexes = (
            models.Index(
                fields=("certificates_not_after",),
                condition=Q(status="invited"),
                name="cms_renewal_invited_idx",
            ),
        )

    def __str__(self) -> str:
        return f"renewal invitation {self.card_id} ({self.status})"


class CardRenewal(models.Model):
    """One certificate renewal on a card (issue 15 item 1): the program
    ``cards.programs.renewal`` run through a station's relay, resumed from ``checkpoint`` when
    the card comes back after a tear (cms.personalization.renewal). Its pending certificates are
    linked to the card under ``<slot>.next`` until the commit on the card."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        INTERRUPTED = "interrupted", "Interrupted"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="renewals")
    invitation = models.ForeignKey(
        RenewalInvitation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="renewals",
    )
    station = models.ForeignKey(
        Station, on_delete=models.PROTECT, null=True, blank=True, related_name="renewals"
    )
    status = models.CharField(max_length=11, choices=Status.choices, default=Status.RUNNING)
    seq = models.PositiveIntegerField(default=0, help_text="number of the batch in flight")
    checkpoint = models.JSONField(null=True, blank=True)
    phase = models.CharField(max_length=40, blank=True)
    batches = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-started_at",)
        constraints = (
            models.UniqueConstraint(
                fields=("card",),
                condition=Q(status__in=("running", "interrupted")),
                name="%(app_label)s_%(class)s_one_open_per_card",
            ),
        )

    def __str__(self) -> str:
        return f"renewal {self.pk} of {self.card_id} ({self.status})"


class BulkRevocation(models.Model):
    """Cards revoked together (a compromised batch, a withdrawn product), launched under dual
    control and run in batches by Celery (cms.services.bulk_revocation); resumable: each run
    revokes the selected cards still in service."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    selection = models.JSONField(help_text="one of batch_id, product_id, issued window, numbers")
    reason = models.CharField(max_length=16, choices=RevokeReason.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    act_id = models.BigIntegerField(help_text="the dual-control act that launched it")
    total = models.PositiveIntegerField(help_text="cards in service when it was launched")
    revoked = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"bulk revocation #{self.pk} ({self.status})"


class UnblockEvent(models.Model):
    """One helpdesk act on a card's codes (cms.services.helpdesk): an offline-unblock response
    computed, a PUK unblock or PIN status reported by a station. The identity check the agent
    recorded is kept; the response itself never is."""

    class Kind(models.TextChoices):
        OFFLINE_RESPONSE = "offline_response", "Offline unblock response"
        PUK_UNBLOCK = "puk_unblock", "PUK unblock at a station"
        PIN_STATUS = "pin_status", "PIN status read"
        NEW_CODES = "new_codes", "New PIN and PUK written at a station"

    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="unblock_events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )
    identity_method = models.CharField(max_length=40, blank=True)
    identity_reference = models.CharField(max_length=200, blank=True)
    challenge = models.CharField(max_length=16, blank=True)
    outcome = models.CharField(max_length=20, blank=True)
    pin_tries_left = models.PositiveSmallIntegerField(null=True, blank=True)
    puk_tries_left = models.PositiveSmallIntegerField(null=True, blank=True)
    approval = models.OneToOneField(
        "core.DualControlAct",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        help_text="the second agent's approval this response used (once)",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = (
            models.Index(fields=("card", "kind", "created_at"), name="cms_unblock_card_idx"),
        )

    def __str__(self) -> str:
        return f"{self.kind} {self.card_id}"


class NewCodesRequest(models.Model):
    """A helpdesk agent's request for a new PIN and PUK on an issued card (forgotten or blocked
    PUK, mailer lost or never received; ``cms.services.new_codes``). The codes are chosen once,
    when the request is filed, and kept sealed (card key store, bound to the request id) until a
    station session has written them and their mailer is queued: a torn session writes the same
    codes again."""

    class Status(models.TextChoices):
        AWAITING_APPROVAL = (
            "awaiting_approval",
            pgettext_lazy("new codes status", "Waiting for a second agent's approval"),
        )
        QUEUED = "queued", pgettext_lazy("new codes status", "Waiting for the card at a station")
        DONE = "done", pgettext_lazy("new codes status", "New codes written, mailer queued")
        CANCELLED = "cancelled", pgettext_lazy("new codes status", "Cancelled")

    class Reason(models.TextChoices):
        FORGOTTEN_PUK = "forgotten_puk", pgettext_lazy("new codes reason", "PUK forgotten")
        BLOCKED_PUK = "blocked_puk", pgettext_lazy("new codes reason", "PUK blocked")
        MAILER_LOST = "mailer_lost", pgettext_lazy("new codes reason", "PIN mailer lost")
        MAILER_NOT_RECEIVED = (
            "mailer_not_received",
            pgettext_lazy("new codes reason", "PIN mailer never received"),
        )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="new_codes_requests")
    status = models.CharField(max_length=17, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=19, choices=Reason.choices)
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    identity_method = models.CharField(max_length=40)
    identity_reference = models.CharField(max_length=200)
    approval = models.OneToOneField(
        "core.DualControlAct",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        help_text="the second agent's approval, where configured",
    )
    sealed_secrets = models.BinaryField(null=True, blank=True, editable=False)
    mailer = models.OneToOneField(
        PinMailer, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    pin_tries_left = models.PositiveSmallIntegerField(null=True, blank=True)
    puk_tries_left = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = (
            models.UniqueConstraint(
                fields=("card",),
                condition=Q(status__in=("awaiting_approval", "queued")),
                name="%(app_label)s_%(class)s_one_open_per_card",
            ),
            # Sealed while open; gone once done or cancelled.
            models.CheckConstraint(
                condition=Q(status__in=("done", "cancelled"), sealed_secrets__isnull=True)
                | (Q(status__in=("awaiting_approval", "queued")) & Q(sealed_secrets__isnull=False)),
                name="%(app_label)s_%(class)s_sealed_while_open",
            ),
        )

    def __str__(self) -> str:
        return f"new codes {self.card_id} ({self.status})"


class NewCodesSession(RelayedSession):
    """One station session serving a new-codes request (the personalization relay: the server
    drives the program, the station carries its batches). Its id is the session id the station
    sends with every exchange."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "New codes written"
        INTERRUPTED = "interrupted", "Interrupted (station lost or card removed)"
        ABORTED = "aborted", "Aborted (not the request's card, or refused by the card)"

    request = models.ForeignKey(NewCodesRequest, on_delete=models.PROTECT, related_name="sessions")
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=11, choices=Status.choices, default=Status.RUNNING)

    class Meta(RelayedSession.Meta):
        constraints = (one_running_per("request"),)

    def __str__(self) -> str:
        return f"new-codes session {self.pk} ({self.status})"
