"""The daily expiry sweep (DESIGN.md §7): renewal invitations, renewal requests, EXPIRED.

Three passes, each in batches of its own transactions, each idempotent (a second run the same
day finds nothing to do) and resumable (a crash loses at most the batch in flight):

1. certificates expiring within the product's certificate window on cards that outlive them →
   one renewal invitation per card (renewal of the certificates on the card); invitations whose
   card no longer holds such a certificate are marked done;
2. cards expiring within the product's card window → a renewal request (draft) for a new card;
3. cards past their end → EXPIRED (their certificates have expired with them: nothing to revoke).

Windows are product settings (``"renewal": {"certificate_window_days": …, "card_window_days":
…}`` in the product definition), defaulting to ``RENEWAL_CERTIFICATE_WINDOW_DAYS`` and
``RENEWAL_CARD_WINDOW_DAYS``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, Min, OuterRef, QuerySet
from django.utils import timezone

from cms import lifecycle
from cms.callers import Caller
from cms.choices import CardStatus, HolderStatus, ProductStatus, RequestKind, RequestStatus
from cms.models import Card, CardCertificate, CardRequest, Product, RenewalInvitation
from cms.services.cards import card_transition
from cms.services.requests import request_create
from core.audit import audit_event_create
from core.errors import ApplicationError
from pki.choices import CertificateStatus

SWEEP = Caller.for_system("expiry-sweep")


@dataclass(slots=True)
class SweepReport:
    invited: int = 0
    invitations_done: int = 0
    renewal_requests: int = 0
    expired: int = 0
    skipped: int = 0  # refused by a service (e.g. a holder no longer active): left for a person


def windows(product: Product) -> tuple[dt.timedelta, dt.timedelta]:
    """(certificate window, card window) of a product."""
    renewal = product.definition.get("renewal", {}) if isinstance(product.definition, dict) else {}
    cert_days = renewal.get("certificate_window_days", settings.RENEWAL_CERTIFICATE_WINDOW_DAYS)
    card_days = renewal.get("card_window_days", settings.RENEWAL_CARD_WINDOW_DAYS)
    return dt.timedelta(days=int(cert_days)), dt.timedelta(days=int(card_days))


def certificates_due(product: Product, now: dt.datetime) -> QuerySet[Any, Any]:
    """(card_id, first expiry) of active cards of ``product`` with a valid certificate expiring
    within the window, before the card does, and no open invitation."""
    cert_window, _ = windows(product)
    open_invitation = RenewalInvitation.objects.filter(
        card_id=OuterRef("card_id"), status=RenewalInvitation.Status.INVITED
    )
    return (
        CardCertificate.objects.filter(
            card__product=product,
            card__status=CardStatus.ACTIVE,
            certificate__status=CertificateStatus.VALID,
            certificate__not_after__lte=now + cert_window,
            card__expires_at__gt=F("certificate__not_after"),
        )
        .filter(~Exists(open_invitation))
        .values("card_id")
        .annotate(first=Min("certificate__not_after"))
        .order_by("card_id")
    )


def cards_due(product: Product, now: dt.datetime) -> QuerySet[Card]:
    """Cards of ``product`` in service expiring within the card window, without a renewal."""
    _, card_window = windows(product)
    renewal = CardRequest.objects.filter(replaces=OuterRef("pk"), kind=RequestKind.RENEWAL).exclude(
        status=RequestStatus.REJECTED
    )
    return (
        Card.objects.filter(
            product=product,
            status__in=lifecycle.LIVE_STATUSES,
            expires_at__gt=now,
            expires_at__lte=now + card_window,
        )
        .filter(~Exists(renewal))
        .order_by("pk")
    )


def cards_past_end(now: dt.datetime) -> QuerySet[Card]:
    return Card.objects.filter(status__in=lifecycle.LIVE_STATUSES, expires_at__lte=now).order_by(
        "expires_at", "pk"
    )


def _invite_batch(product: Product, now: dt.datetime, after: object, size: int) -> list[object]:
    due = certificates_due(product, now)
    if after is not None:
        due = due.filter(card_id__gt=after)
    rows = list(due[:size])
    with transaction.atomic():
        for row in rows:
            invitation, created = RenewalInvitation.objects.get_or_create(
                card_id=row["card_id"], certificates_not_after=row["first"]
            )
            if created:
                audit_event_create(
                    actor=SWEEP.actor,
                    action="card.renewal_invite",
                    object_type="card",
                    object_id=str(row["card_id"]),
                    details={
                        "invitation_id": invitation.pk,
                        "certificates_not_after": row["first"].isoformat(),
                    },
                )
    return [row["card_id"] for row in rows]


def _invitations_done(now: dt.datetime, size: int) -> int:
    still_due = CardCertificate.objects.filter(
        card_id=OuterRef("card_id"),
        certificate__status=CertificateStatus.VALID,
        certificate__not_after__lte=OuterRef("certificates_not_after"),
    )
    done = 0
    while True:
        with transaction.atomic():
            batch = list(
                RenewalInvitation.objects.select_for_update(skip_locked=True)
                .filter(status=RenewalInvitation.Status.INVITED)
                .filter(~Exists(still_due))
                .order_by("pk")[:size]
            )
            for invitation in batch:
                invitation.status = RenewalInvitation.Status.DONE
                invitation.done_at = now
                invitation.save(update_fields=["status", "done_at"])
                audit_event_create(
                    actor=SWEEP.actor,
                    action="card.renewal_done",
                    object_type="card",
                    object_id=str(invitation.card_id),
                    details={"invitation_id": invitation.pk},
                )
        done += len(batch)
        if len(batch) < size:
            return done


def expiry_sweep(*, batch_size: int | None = None) -> SweepReport:
    """Run the three passes of the module docstring at ``timezone.now()``."""
    size = batch_size or settings.EXPIRY_SWEEP_BATCH
    now = timezone.now()
    report = SweepReport()
    products = list(Product.objects.filter(status=ProductStatus.ISSUED).order_by("pk"))
    for product in products:
        after = None
        while True:
            ids = _invite_batch(product, now, after, size)
            report.invited += len(ids)
            if len(ids) < size:
                break
            after = ids[-1]
    report.invitations_done = _invitations_done(now, size)
    for product in products:
        after_pk = None
        while True:
            due = cards_due(product, now).filter(holder__status=HolderStatus.ACTIVE)
            if after_pk is not None:
                due = due.filter(pk__gt=after_pk)
            batch = list(due.values_list("pk", "holder_id")[:size])
            for card_id, holder_id in batch:
                try:
                    request_create(
                        holder_id=holder_id,
                        kind=RequestKind.RENEWAL,
                        product_id=product.pk,
                        replaces_card_id=card_id,
                        caller=SWEEP,
                        note="expiry sweep",
                    )
                    report.renewal_requests += 1
                except ApplicationError:
                    report.skipped += 1
            if len(batch) < size:
                break
            after_pk = batch[-1][0]
    while True:
        batch_ids = list(cards_past_end(now).values_list("pk", flat=True)[:size])
        for card_id in batch_ids:
            outcome = card_transition(card_id=card_id, transition="expire", caller=SWEEP)
            report.expired += int(outcome.applied)
        if len(batch_ids) < size:
            break
    return report


def campaign(now: dt.datetime | None = None) -> dict[str, dict[str, int]]:
    """What is due, invited or requested, done and overdue (the campaign views)."""
    now = now or timezone.now()
    products = list(Product.objects.filter(status=ProductStatus.ISSUED))
    invitations = RenewalInvitation.objects
    renewals = CardRequest.objects.filter(kind=RequestKind.RENEWAL)
    return {
        "certificates": {
            "due": sum(certificates_due(p, now).count() for p in products),
            "invited": invitations.filter(
                status=RenewalInvitation.Status.INVITED, certificates_not_after__gt=now
            ).count(),
            "done": invitations.filter(status=RenewalInvitation.Status.DONE).count(),
            "overdue": invitations.filter(
                status=RenewalInvitation.Status.INVITED, certificates_not_after__lte=now
            ).count(),
        },
        "cards": {
            "due": sum(cards_due(p, now).count() for p in products),
            "requested": renewals.exclude(
                status__in=(RequestStatus.DONE, RequestStatus.REJECTED)
            ).count(),
            "done": renewals.filter(status=RequestStatus.DONE).count(),
            "overdue": cards_past_end(now).count(),
        },
    }
