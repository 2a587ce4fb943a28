"""What follows when the registry learns that a holder is no longer active (DESIGN.md §7).

The daily directory extract (the holder import's format, with its status column) or an operator's
change marks a holder as having left the profession, struck off or deceased: each of the holder's
cards in service is revoked (``cessationOfOperation``, or ``privilegeWithdrawn`` for struck off),
each open request not yet being written is cancelled, one audit event each, in the transaction of
the status change. A re-registered holder (back to active) gets new cards through the normal
flow: a revoked card never comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from cms import lifecycle
from cms.callers import Caller
from cms.choices import HolderStatus, RequestStatus, RevokeReason
from cms.models import Card, CardRequest, Holder
from cms.services.cards import card_revoke_consequence
from core.audit import audit_event_create

REVOKE_REASON = {
    HolderStatus.LEFT_PROFESSION: RevokeReason.HOLDER_LEFT,
    HolderStatus.STRUCK_OFF: RevokeReason.STRUCK_OFF,
    HolderStatus.DECEASED: RevokeReason.DECEASED,
}
# Requests not yet handed to a station are cancelled; one being written ends with its card
# issued and then revoked by the next extract or by hand (listed in the audit event).
CANCELLED = (
    RequestStatus.DRAFT,
    RequestStatus.SUBMITTED,
    RequestStatus.APPROVED,
    RequestStatus.FAILED,
)
IN_PERSONALIZATION = (RequestStatus.QUEUED, RequestStatus.PERSONALIZING)


@dataclass(slots=True)
class HolderEventOutcome:
    revoked_cards: list[str] = field(default_factory=list)
    cancelled_requests: list[str] = field(default_factory=list)
    in_personalization: list[str] = field(default_factory=list)


def holder_status_consequences(*, holder: Holder, caller: Caller) -> HolderEventOutcome:
    """Revoke the cards and cancel the open requests of a holder who is no longer active. Runs
    inside the caller's transaction (the status change); a second run finds nothing to do."""
    outcome = HolderEventOutcome()
    reason = REVOKE_REASON.get(HolderStatus(holder.status))
    if reason is None:
        return outcome
    assert transaction.get_connection().in_atomic_block
    cards = Card.objects.filter(holder=holder, status__in=lifecycle.LIVE_STATUSES).order_by("pk")
    for card_id in cards.values_list("pk", flat=True):
        if card_revoke_consequence(card_id=card_id, reason=reason, caller=caller):
            outcome.revoked_cards.append(str(card_id))
    now = timezone.now()
    requests = CardRequest.objects.select_for_update().filter(holder=holder).order_by("pk")
    for request in requests.filter(status__in=CANCELLED):
        request.status = RequestStatus.REJECTED
        request.decided_at = now
        request.decision_note = f"cancelled: holder {holder.status}"
        request.save(update_fields=["status", "decided_at", "decision_note"])
        audit_event_create(
            actor=caller.actor,
            action="request.cancel",
            object_type="card_request",
            object_id=str(request.pk),
            details={"kind": request.kind, "holder_status": holder.status},
        )
        outcome.cancelled_requests.append(str(request.pk))
    outcome.in_personalization = [
        str(pk)
        for pk in requests.filter(status__in=IN_PERSONALIZATION).values_list("pk", flat=True)
    ]
    if outcome.in_personalization:
        audit_event_create(
            actor=caller.actor,
            action="holder.requests_in_personalization",
            object_type="holder",
            object_id=str(holder.pk),
            details={"holder_status": holder.status, "requests": outcome.in_personalization},
        )
    return outcome
