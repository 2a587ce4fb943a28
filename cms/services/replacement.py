"""Replacement of a lost, stolen or damaged card, and the temporary card lent meanwhile.

One act, :func:`card_report_loss`, does what a lost card needs (DESIGN.md §7): a lost or stolen
card is revoked at once (``keyCompromise`` for its certificates, its DESFire UID on the deny list)
and an *expedited* replacement request is filed, which stations serve before ordinary ones; a
damaged card stays in service until its replacement is activated, which revokes it
(``superseded``). The identity check the helpdesk made is recorded on the request and in the
audit event. A temporary card linked to the replacement (:func:`replacement_temporary_link`) is
revoked (``superseded``) when the replacement is activated (``cms.services.cards``).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.db import transaction

from cms import lifecycle
from cms.callers import Caller
from cms.choices import CardStatus, LossReason, RequestKind, RequestStatus
from cms.models import Card, CardRequest
from cms.services.cards import card_transition
from cms.services.requests import OPEN_STATUSES, request_create, request_submit
from core.audit import audit_event_create
from core.errors import BadInput, Conflict, Forbidden, NotFound, PolicyViolation

REPORT_ROLES = lifecycle.BY_NAME["revoke"].roles & lifecycle.REQUEST_BY_NAME["submit"].roles
# Lost and stolen cards are revoked at once; a damaged card waits for its replacement.
REVOKED_AT_ONCE = frozenset({LossReason.LOST, LossReason.STOLEN})


@dataclass(frozen=True, slots=True)
class LossReport:
    card: Card
    request: CardRequest
    revoked: bool  # False: a damaged card, or a card revoked by an earlier report


def _loss_reason(value: str) -> LossReason:
    try:
        return LossReason(value)
    except ValueError:
        choices = ", ".join(LossReason.values)
        raise BadInput(f"Unknown reason {value!r}; use one of {choices}.") from None


@transaction.atomic
def card_report_loss(
    *,
    card_id: UUID,
    reason: str,
    identity_check: str,
    caller: Caller,
    product_id: int | None = None,
    pool_id: int | None = None,
) -> LossReport:
    """Report a card lost, stolen or damaged on its holder's behalf and file its replacement.

    ``identity_check`` says how the holder's identity was checked (required). The replacement is
    of ``product_id`` (the card's own product by default). Reporting the same card again returns
    the same request and changes nothing.
    """
    if not (caller.roles & REPORT_ROLES):
        allowed = ", ".join(sorted(r.value for r in REPORT_ROLES))
        raise Forbidden(f"Reporting a card lost needs one of the roles: {allowed}.")
    loss = _loss_reason(reason)
    identity_check = identity_check.strip()
    if not identity_check:
        raise BadInput("Say how the holder's identity was checked (identity_check).")
    card = Card.objects.select_for_update().filter(pk=card_id).first()
    if card is None:
        raise NotFound(f"No card {card_id}.")
    if card.holder_id is None:
        raise Conflict(f"Card {card} has no holder; there is nothing to replace.")
    existing = (
        CardRequest.objects.select_for_update()
        .filter(replaces=card, kind=RequestKind.REPLACEMENT)
        .exclude(status=RequestStatus.REJECTED)
        .order_by("-created_at")
        .first()
    )
    if existing is not None and card.status not in lifecycle.LIVE_STATUSES:
        return LossReport(card=card, request=existing, revoked=False)
    if card.status not in lifecycle.LIVE_STATUSES:
        raise Conflict(
            f"Card {card} is {card.status}: only a card in service is reported lost.",
            extra={"card_id": str(card.pk), "status": card.status},
        )
    revoked = False
    if loss in REVOKED_AT_ONCE:
        outcome = card_transition(
            card_id=card.pk, transition="revoke", reason=loss.value, caller=caller
        )
        card, revoked = outcome.card, outcome.applied
    request = existing
    holder_id = card.holder_id
    assert holder_id is not None  # checked above
    if request is None or request.status not in OPEN_STATUSES:
        request = request_create(
            holder_id=holder_id,
            kind=RequestKind.REPLACEMENT,
            product_id=product_id if product_id is not None else card.product_id,
            replaces_card_id=card.pk,
            pool_id=pool_id,
            caller=caller,
            note=f"replaces card {card} ({loss.value})",
        )
    request.expedited = loss in REVOKED_AT_ONCE
    request.loss_reason = loss.value
    request.identity_check = identity_check[:200]
    request.save(update_fields=["expedited", "loss_reason", "identity_check"])
    if request.status == RequestStatus.DRAFT:
        request = request_submit(request_id=request.pk, caller=caller)
    audit_event_create(
        actor=caller.actor,
        action="card.report_loss",
        object_type="card",
        object_id=str(card.pk),
        details={
            "reason": loss.value,
            "identity_check": request.identity_check,
            "card_number": card.card_number or "",
            "revoked": revoked,
            "request_id": str(request.pk),
            "expedited": request.expedited,
        },
    )
    return LossReport(card=card, request=request, revoked=revoked)


@transaction.atomic
def replacement_temporary_link(*, request_id: UUID, card_id: UUID, caller: Caller) -> CardRequest:
    """Link a temporary card (a product whose definition says ``"temporary": true``) handed to
    the holder of a replacement request; it is revoked when the replacement is activated."""
    if not (caller.roles & REPORT_ROLES):
        raise Forbidden("Linking a temporary card needs the role of an operator or helpdesk agent.")
    request = CardRequest.objects.select_for_update().filter(pk=request_id).first()
    if request is None:
        raise NotFound(f"No request {request_id}.")
    if request.kind != RequestKind.REPLACEMENT:
        raise BadInput("A temporary card is linked to a replacement request.")
    temporary = Card.objects.select_related("product").filter(pk=card_id).first()
    if temporary is None:
        raise NotFound(f"No card {card_id}.")
    if request.temporary_card_id == temporary.pk:
        return request
    if request.temporary_card_id is not None:
        raise Conflict("The request already has a temporary card.")
    if temporary.product.definition.get("temporary") is not True:
        raise PolicyViolation(f"{temporary.product} is not a temporary card product.")
    if temporary.holder_id != request.holder_id:
        raise BadInput("The temporary card belongs to another holder.")
    if temporary.status not in (CardStatus.ISSUED, CardStatus.ACTIVE):
        raise Conflict(f"Temporary card {temporary} is {temporary.status}.")
    replacement = request.card
    if replacement is not None and replacement.status not in (
        CardStatus.ALLOCATED.value,
        CardStatus.PERSONALIZING.value,
        CardStatus.ISSUED.value,
    ):
        raise Conflict("The replacement card is already in service or out of it.")
    request.temporary_card = temporary
    request.save(update_fields=["temporary_card"])
    audit_event_create(
        actor=caller.actor,
        action="request.temporary_card_link",
        object_type="card_request",
        object_id=str(request.pk),
        details={"card_id": str(temporary.pk), "card_number": temporary.card_number or ""},
    )
    return request
