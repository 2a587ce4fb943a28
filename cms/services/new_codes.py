"""New codes (issue 14, item 4): a helpdesk agent files a request for a new PIN and PUK on a card
(forgotten or blocked PUK, PIN mailer lost or never received), with the identity check recorded
(the methods of offline unblock, ``cms.services.helpdesk``). Where the agency configures it
(``HELPDESK_NEW_CODES_DUAL_CONTROL``), a second agent approves first (``core.dual_control``, act
``helpdesk.new_codes``). A station then serves the request when the holder presents the card
(``cms.personalization.codes``): new codes written inside SCP03, a new PIN mailer queued, the
card's unprinted one voided.

The codes are chosen and sealed here, once per request: no agent, API answer or log ever sees
them; they reach the holder in the new mailer only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet

from cms.callers import Caller
from cms.choices import CardStatus, english_label
from cms.models import Card, NewCodesRequest, NewCodesSession
from cms.personalization.codes import SERVABLE, codes_new, codes_seal, running_fresh
from cms.personalization.inputs import product_of
from cms.services.helpdesk import identity_record
from core.actors import Actor
from core.audit import audit_event_create
from core.dual_control import ActKind, act_request, register
from core.errors import BadInput, Conflict, Forbidden, NotFound
from core.models import DualControlAct
from core.roles import Role

__all__ = [
    "ACT_KIND",
    "REASONS",
    "new_codes_cancel",
    "new_codes_history",
    "new_codes_request",
]

ACT_KIND = "helpdesk.new_codes"
REASONS = dict(NewCodesRequest.Reason.choices)
OPEN = (NewCodesRequest.Status.AWAITING_APPROVAL, NewCodesRequest.Status.QUEUED)


def dual_control_on() -> bool:
    return bool(getattr(settings, "HELPDESK_NEW_CODES_DUAL_CONTROL", False))


def new_codes_history(*, card_id: UUID) -> QuerySet[NewCodesRequest]:
    return NewCodesRequest.objects.filter(card_id=card_id).select_related("agent", "mailer")


def _agent(caller: Caller) -> int:
    if Role.HELPDESK_AGENT not in caller.roles or caller.user_id is None:
        raise Forbidden("Only a helpdesk agent files new codes.")
    return caller.user_id


def _reason(reason: str) -> str:
    if reason not in REASONS:
        raise BadInput(
            f"Say why new codes are needed: one of {', '.join(REASONS)}.",
            extra={"fields": {"reason": sorted(REASONS)}},
        )
    return reason


def _stale_approval(request: NewCodesRequest) -> bool:
    """An approval that will never come (refused, cancelled or expired)."""
    act = request.approval
    return act is not None and act.status not in (
        DualControlAct.Status.PENDING,
        DualControlAct.Status.EXECUTED,
    )


def _close(request: NewCodesRequest, actor: Actor, why: str) -> None:
    request.status = NewCodesRequest.Status.CANCELLED
    request.sealed_secrets = None
    request.save(update_fields=["status", "sealed_secrets"])
    audit_event_create(
        actor=actor,
        action="card.new_codes_cancel",
        object_type="card",
        object_id=str(request.card_id),
        details={"request_id": str(request.pk), "why": why},
    )


def new_codes_request(
    *,
    card_id: UUID,
    reason: str,
    identity_method: str,
    identity_reference: str,
    caller: Caller,
    note: str = "",
) -> NewCodesRequest:
    """File a new-codes request: queued for a station at once, or waiting for a second agent
    when dual control is configured. One open request per card."""
    user_id = _agent(caller)
    method, reference = identity_record(identity_method, identity_reference)
    reason = _reason(reason)
    with transaction.atomic():
        try:
            card = (
                Card.objects.select_for_update(of=("self",))
                .select_related("product")
                .get(pk=card_id)
            )
        except Card.DoesNotExist:
            raise NotFound(f"No card {card_id}.") from None
        if card.status not in SERVABLE:
            raise Conflict(
                f"A card that is {english_label(CardStatus(card.status))} gets no new codes; "
                "only an issued, active or suspended card does.",
                extra={"status": card.status},
            )
        if not card.card_number:
            raise Conflict("This card was not personalized by this system: no new codes.")
        product = product_of(card)
        if product.scp03 is None or product.puk is None:
            raise Conflict(f"{product.name} cards get no new codes (no issuer channel or PUK).")
        for open_request in (
            NewCodesRequest.objects.select_for_update(of=("self",))
            .filter(card=card, status__in=OPEN)
            .select_related("approval")
        ):
            if _stale_approval(open_request):
                _close(open_request, caller.actor, "its approval was refused or expired")
                continue
            raise Conflict(
                "This card already has an open new-codes request.",
                extra={"request": str(open_request.pk), "request_status": open_request.status},
            )
        request = NewCodesRequest(
            card=card,
            reason=reason,
            agent_id=user_id,
            identity_method=method,
            identity_reference=reference,
        )
        assert product.puk is not None
        request.sealed_secrets = codes_seal(
            request.pk, codes_new(product.pin.min_length, product.puk.min_length)
        )
        if dual_control_on():
            request.status = NewCodesRequest.Status.AWAITING_APPROVAL
            request.approval = act_request(
                kind=ACT_KIND,
                params={
                    "request_id": str(request.pk),
                    "card_id": str(card.pk),
                    "card_number": card.card_number,
                    "reason": reason,
                },
                user=get_user_model().objects.get(pk=user_id),
                reason=note.strip() or f"{REASONS[reason]}; identity checked by {method}",
            )
        request.save(force_insert=True)
        audit_event_create(
            actor=caller.actor,
            action="card.new_codes_request",
            object_type="card",
            object_id=str(card.pk),
            details={
                "request_id": str(request.pk),
                "reason": reason,
                "identity_method": method,
                "identity_reference": reference,
                "approval": request.approval_id,
                "status": request.status,
            },
        )
    return request


def new_codes_cancel(*, request_id: UUID, caller: Caller) -> NewCodesRequest:
    """Cancel an open request (its sealed codes are dropped). Refused while a station may be
    writing them."""
    _agent(caller)
    with transaction.atomic():
        try:
            request = NewCodesRequest.objects.select_for_update().get(pk=request_id)
        except NewCodesRequest.DoesNotExist:
            raise NotFound(f"No new-codes request {request_id}.") from None
        if request.status not in OPEN:
            raise Conflict(
                f"This request is {english_label(NewCodesRequest.Status(request.status))}.",
                extra={"request_status": request.status},
            )
        if running_fresh(request):
            raise Conflict("A station is writing these codes now; try again in a few minutes.")
        NewCodesSession.objects.filter(
            request=request, status=NewCodesSession.Status.RUNNING
        ).update(status=NewCodesSession.Status.INTERRUPTED, error="request cancelled")
        _close(request, caller.actor, "cancelled by an agent")
    return request


def _approval_validate(params: Mapping[str, Any]) -> str:
    if not isinstance(params.get("request_id"), str):
        raise BadInput("request_id is required.")
    reason = REASONS.get(str(params.get("reason")), "new codes")
    return f"New PIN and PUK for card {params.get('card_number', '?')} ({reason.lower()})"


def _approval_handler(
    act: DualControlAct, requester: Actor, approver: Actor
) -> Mapping[str, Any] | None:
    request = (
        NewCodesRequest.objects.select_for_update().filter(pk=act.params["request_id"]).first()
    )
    if request is None or request.status != NewCodesRequest.Status.AWAITING_APPROVAL:
        raise Conflict("This new-codes request is no longer waiting for approval.")
    request.status = NewCodesRequest.Status.QUEUED
    request.save(update_fields=["status"])
    audit_event_create(
        actor=approver,
        action="card.new_codes_approve",
        object_type="card",
        object_id=str(request.card_id),
        details={"request_id": str(request.pk), "act": act.pk, "requested_by": requester.label},
    )
    return {"request_id": str(request.pk), "status": request.status}


register(
    ActKind(
        name=ACT_KIND,
        role=Role.HELPDESK_AGENT,
        label="New PIN and PUK for a card",
        handler=_approval_handler,
        validate=_approval_validate,
    )
)
