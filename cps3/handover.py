"""The hand-over: a migrated holder's CPS3 is revoked (``superseded``) once their CPS4 has been
active for the grace period (``CPS3_HANDOVER_GRACE_DAYS``), by a daily task.

The CPS3 is revoked only while the CPS4 that replaces it is ACTIVE at the moment of the sweep: a
CPS4 suspended, revoked or never activated leaves the CPS3 in service, so the holder is never left
without a working card by this task. Each revocation is its own transaction (a card transition,
audited, its certificates revoked through the PKI: CRL and OCSP follow).
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cms.callers import Caller
from cms.choices import CardStatus, ProductStatus, RequestKind, RequestStatus
from cms.models import Card, CardRequest
from cms.services.cards import card_transition
from core.errors import ApplicationError


def grace() -> dt.timedelta:
    return dt.timedelta(days=float(getattr(settings, "CPS3_HANDOVER_GRACE_DAYS", 30)))


def handover_due(now: dt.datetime | None = None) -> list[Card]:
    """The CPS3 cards whose CPS4 is active since the grace period or longer."""
    now = now or timezone.now()
    replaced = CardRequest.objects.filter(
        kind=RequestKind.MIGRATION,
        status=RequestStatus.DONE,
        card__status=CardStatus.ACTIVE,
        card__activated_at__lte=now - grace(),
    ).values("replaces_id")
    return list(
        Card.objects.filter(
            pk__in=replaced,
            product__status=ProductStatus.LEGACY,
            status__in=(CardStatus.ACTIVE, CardStatus.SUSPENDED),
        ).order_by("pk")
    )


def handover_sweep(now: dt.datetime | None = None) -> int:
    """Revoke each due CPS3 (``superseded``); returns how many were revoked."""
    caller = Caller.for_system("cps3 hand-over")
    done = 0
    for card in handover_due(now):
        try:
            with transaction.atomic():
                # Checked again under the lock: the CPS4 may have changed since the list was read.
                if not handover_due_for(card.pk, now):
                    continue
                card_transition(
                    card_id=card.pk, transition="revoke", caller=caller, reason="superseded"
                )
                done += 1
        except ApplicationError:
            continue  # refused (already ended by someone): the next run looks again
    return done


def handover_due_for(card_id: UUID, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    return (
        CardRequest.objects.select_for_update(of=("self",))
        .filter(
            kind=RequestKind.MIGRATION,
            status=RequestStatus.DONE,
            replaces_id=card_id,
            card__status=CardStatus.ACTIVE,
            card__activated_at__lte=now - grace(),
        )
        .exists()
    )
