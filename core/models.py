from __future__ import annotations

from django.db import models


class AuditEvent(models.Model):
    """One link of the append-only, hash-chained audit log (DESIGN.md §3).

    Rows are written only by ``core.audit.audit_event_create``; the database refuses UPDATE and
    DELETE (a trigger), and ``manage.py audit_verify`` recomputes the chain.
    """

    seq = models.BigIntegerField(primary_key=True)
    occurred_at = models.DateTimeField()
    actor_kind = models.CharField(max_length=16)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=128)
    details = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ("seq",)
        indexes = (
            models.Index(fields=("object_type", "object_id"), name="core_audit_object_idx"),
            models.Index(fields=("action",), name="core_audit_action_idx"),
            models.Index(fields=("occurred_at",), name="core_audit_time_idx"),
        )
        constraints = (
            models.UniqueConstraint(fields=("hash",), name="%(app_label)s_%(class)s_unique_hash"),
            models.CheckConstraint(
                condition=models.Q(seq__gte=1), name="%(app_label)s_%(class)s_seq_positive"
            ),
        )

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"


class ApiToken(models.Model):
    """An API credential. Only its SHA-256 digest is stored; the token is shown once."""

    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8, help_text="first characters, to tell tokens apart")
    label = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="refused from then on (API_TOKEN_*LIFETIME_DAYS)"
    )

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user_id})"


class DualControlAct(models.Model):
    """A sensitive act that one person asks for and a second person approves (DESIGN.md §3).

    The act runs when the second person approves it, inside the approval's transaction, through the
    handler registered for its ``kind`` (``core.dual_control``). ``params`` holds what the handler
    needs and never a secret.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting a second person"
        EXECUTED = "executed", "Approved and carried out"
        REFUSED = "refused", "Refused by the second person"
        CANCELLED = "cancelled", "Withdrawn by its requester"
        EXPIRED = "expired", "Not approved in time"

    kind = models.CharField(max_length=64)
    params = models.JSONField(default=dict)
    summary = models.CharField(max_length=300)
    reason = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, related_name="dual_control_requested"
    )
    requested_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        "auth.User",
        on_delete=models.PROTECT,
        related_name="dual_control_decided",
        null=True,
        blank=True,
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    result = models.JSONField(default=dict)

    class Meta:
        ordering = ("-requested_at",)
        indexes = (models.Index(fields=("status", "kind"), name="core_dualctl_status_kind_idx"),)
        constraints = (
            models.CheckConstraint(
                condition=~models.Q(decided_by=models.F("requested_by")),
                name="%(app_label)s_%(class)s_two_people",
            ),
        )

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"
