"""Card transitions: one path for every move of the lifecycle table, with its effects.

Each transition locks the card row, re-reads it, returns early when the card already is where the
caller wants it (a repeated call is a no-op), refuses a move the table does not allow with 409 and
the allowed transitions in ``extra``, and writes its audit event in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from cards.products import add_years, registry_card_number
from cms import effects, lifecycle
from cms.callers import Caller
from cms.choices import ApprovalStatus, CardStatus, RevokeReason
from cms.lifecycle import Effect, Transition
from cms.models import IN_SERVICE, Card, CardTransitionApproval, Holder, PinMailer
from core.audit import AuditEntry, audit_event_create, audit_events_create
from core.errors import BadInput, Conflict, Forbidden, NotFound
from core.models import AuditEvent
from core.rows import joined_read, row_update


@dataclass(frozen=True, slots=True)
class TransitionOutcome:
    card: Card
    applied: bool  # False: nothing changed (already there) or waiting for a second approver
    approval: CardTransitionApproval | None = None


def card_number_of(card: Card) -> str:
    """The card's number, given at allocation: its chip serial (EF.SN.ICC, issuer number and card
    number), the number on the card body, mailer, deny list and certificates
    (docs/adr/0012-card-number.md). 409 for a chip serial that is no CPS serial."""
    try:
        return registry_card_number(bytes.fromhex(card.chip_serial))
    except ValueError:
        raise Conflict(
            f"Card {card.chip_serial} has no CPS serial (80 25 00 00 01 + 10 BCD digits); "
            "it cannot be given a card number.",
            extra={"card_id": str(card.pk)},
        ) from None


def card_expiry(card: Card, now: dt.datetime, valid_until: dt.date | None) -> dt.datetime:
    """The registry's expiry of a card issued ``now``: the start of the end date written on the
    card (EF_ACTUA), in the configured time zone; without one (a card not written by a session),
    the product's validity from today, by the same rule."""
    if valid_until is None:
        valid_until = add_years(timezone.localdate(now), card.product.validity_years)
    return timezone.make_aware(dt.datetime.combine(valid_until, dt.time()))


def _reason(value: str | None) -> RevokeReason | None:
    if value in (None, ""):
        return None
    try:
        return RevokeReason(value)
    except ValueError:
        choices = ", ".join(r.value for r in RevokeReason)
        raise BadInput(f"Unknown reason {value!r}; use one of {choices}.") from None


def _locked_card(card_id: UUID, related: tuple[str, ...] = ()) -> Card:
    """The card, locked; ``related``: rows read with it (not locked). By a statement built once
    either way: the ORM's ``select_for_update().first()`` cost 3.6 ms a read profiled (issue 12),
    for the same ``SELECT ... FOR UPDATE`` of the one row."""
    read = joined_read(Card, related, for_update=True, lock_root_only=bool(related))
    found = read.get(card_id)
    card = found if isinstance(found, Card) else None
    if card is None:
        raise NotFound(f"No card {card_id}.")
    return card


def allowed_names(status: CardStatus, caller: Caller | None = None) -> list[str]:
    return [
        t.name
        for t in lifecycle.allowed_from(status)
        if caller is None or lifecycle.may_trigger(t, roles=caller.roles, system=caller.system)
    ]


def _checked(name: str, card: Card, caller: Caller, reason: RevokeReason | None) -> Transition:
    status = CardStatus(card.status)
    try:
        return lifecycle.check(
            name, status, roles=caller.roles, system=caller.system, reason=reason
        )
    except lifecycle.UnknownTransition as exc:
        raise BadInput(str(exc)) from None
    except lifecycle.RoleRefused as exc:
        raise Forbidden(str(exc)) from None
    except lifecycle.ReasonRequired as exc:
        raise BadInput(str(exc)) from None
    except lifecycle.InvalidTransition:
        raise Conflict(
            f"Card {card} is {status.value}: {name} is not allowed from there.",
            extra={
                "card_id": str(card.pk),
                "status": status.value,
                "transition": name,
                "allowed": allowed_names(status),
            },
        ) from None


def _already_there(name: str, card: Card) -> bool:
    transition = lifecycle.transition_named(name) if name in lifecycle.BY_NAME else None
    return (
        transition is not None
        and card.status == transition.target
        and card.status not in transition.sources
    )


def _apply(
    *,
    card: Card,
    transition: Transition,
    caller: Caller,
    reason: RevokeReason | None,
    approved_by: Caller | None = None,
    holder: Holder | None = None,
    extra: dict[str, object] | None = None,
    valid_until: dt.date | None = None,
) -> Card:
    """Move a locked card along ``transition`` and carry out its effects, in one transaction."""
    now = timezone.now()
    source = card.status
    card.status = transition.target
    card.status_changed_at = now
    update = ["status", "status_changed_at"]
    if transition.name == "allocate":
        if holder is None:
            raise BadInput("Allocation needs a holder.")
        card.holder, card.card_type = holder, holder.card_type
        card.card_number = card_number_of(card)
        update += ["holder", "card_type", "card_number"]
    elif transition.name == "wipe":
        # Erased back to blank: the number goes with the holder; the chip keeps its serial and
        # gets the same number again when it is allocated to someone else.
        card.holder, card.card_type, card.card_number = None, "", None
        update += ["holder", "card_type", "card_number"]
    elif transition.name == "issue":
        card.issued_at = now
        card.expires_at = card_expiry(card, now, valid_until)
        update += ["issued_at", "expires_at"]
    elif transition.name == "activate":
        card.activated_at = now
        update.append("activated_at")
    elif transition.name == "revoke" and reason is not None:
        card.revoke_reason = reason.value
        update.append("revoke_reason")
    superseded: list[str] = []
    if Effect.SUPERSEDE_REPLACED_CARD in transition.effects:
        superseded = _supersede_replaced(card=card, caller=caller)
    try:
        # A savepoint only where the UPDATE can break a constraint (ADR 0034): the one card in
        # service per holder and type, or a number changing hands; the error is turned into a
        # Conflict that a caller may catch and go on from.
        with transaction.atomic(savepoint=_may_conflict(card, update)):
            # save(update_fields=...)'s UPDATE, built once (core.rows): every transition of
            # every claim and commit runs it, and Card has no save hooks nor auto_now fields.
            written = row_update(Card, tuple(update))
            written.execute(card.pk, [getattr(card, field.attname) for field in written.fields])
    except IntegrityError:
        raise Conflict(
            "The holder already has a card of this type in service; revoke or suspend it first.",
            extra={"card_id": str(card.pk), "holder_id": str(card.holder_id)},
        ) from None
    done = effects.apply(card=card, transition=transition, reason=reason, actor=caller.actor)
    details: dict[str, object] = {
        "transition": transition.name,
        "from": source,
        "to": card.status,
        "card_number": card.card_number or "",
        **done,
        **(extra or {}),
    }
    if reason is not None:
        details["reason"] = reason.value
    if superseded:
        details["superseded"] = superseded
    if approved_by is not None:
        details["approved_by"] = approved_by.actor.label
    audit_event_create(
        actor=caller.actor if approved_by is None else approved_by.actor,
        action=f"card.{transition.name}",
        object_type="card",
        object_id=str(card.pk),
        details=details,
    )
    return card


def _may_conflict(card: Card, update: list[str]) -> bool:
    """Whether saving ``update`` on ``card`` can break one of its unique constraints: the card
    comes into service (one per holder and type) or its holder or number change."""
    return card.status in IN_SERVICE or "holder" in update or "card_number" in update


def _refuse_the_mailer_printer(card: Card, caller: Caller) -> None:
    """Four eyes (issue 11 §4): whoever printed the card's PIN mailer saw the PIN; they do not
    also hand the card into service."""
    mailers = PinMailer.objects.filter(card=card)
    printed = mailers.filter(printed_by=caller.actor.label).exists() or (
        caller.user_id is not None
        and AuditEvent.objects.filter(
            action="pin_mailer.print",
            actor_id=str(caller.user_id),
            object_id__in=[str(pk) for pk in mailers.values_list("pk", flat=True)],
        ).exists()
    )
    if printed:
        raise Forbidden(
            "You printed this card's PIN mailer; another person activates the card.",
            extra={"card_id": str(card.pk)},
        )


def _supersede_replaced(*, card: Card, caller: Caller) -> list[str]:
    """A renewal or replacement card coming into service revokes the card it replaces (reason
    ``damaged`` for a card returned damaged, else ``superseded``) and the temporary card lent
    meanwhile (``superseded``)."""
    request = getattr(card, "request", None)
    if request is None:
        return []
    replaced_reason = (
        RevokeReason.DAMAGED
        if request.loss_reason == RevokeReason.DAMAGED
        else RevokeReason.SUPERSEDED
    )
    superseded = []
    for old_id, reason in (
        (request.replaces_id, replaced_reason),
        (request.temporary_card_id, RevokeReason.SUPERSEDED),
    ):
        if old_id is None or old_id == card.pk:
            continue
        old = _locked_card(old_id)
        if old.status not in lifecycle.LIVE_STATUSES or old.migration_overlap:
            continue  # already out of service, or a CPS3 kept through its migration grace period
        revoke = lifecycle.BY_NAME["revoke"]
        _apply(card=old, transition=revoke, caller=caller, reason=reason)
        superseded.append(str(old.pk))
    return superseded


@transaction.atomic
def card_transition(
    *,
    card_id: UUID,
    transition: str,
    caller: Caller,
    reason: str | None = None,
    holder: Holder | None = None,
    valid_until: dt.date | None = None,
) -> TransitionOutcome:
    """Apply a transition of the lifecycle table to a card (or, for a dual-control transition
    asked by a person, record it until a second person approves). ``valid_until``: the end
    date written on a card being issued (its registry expiry).

    Its own savepoint when called inside an atomic block: a caller may catch its error and go
    on with the transaction. Services that let every error leave their block call
    :func:`card_transition_within` instead."""
    return card_transition_within(
        card_id=card_id,
        transition=transition,
        caller=caller,
        reason=reason,
        holder=holder,
        valid_until=valid_until,
    )


@transaction.atomic(savepoint=False)
def card_transition_within(
    *,
    card_id: UUID,
    transition: str,
    caller: Caller,
    reason: str | None = None,
    holder: Holder | None = None,
    valid_until: dt.date | None = None,
    related: tuple[str, ...] = (),
) -> TransitionOutcome:
    """:func:`card_transition` inside the caller's atomic block, without a savepoint of its own
    (ADR 0034): an error rolls back to the caller's nearest savepoint, or the whole transaction,
    so the caller must not catch it and go on. Saves two statements a call. ``related``: the
    card's foreign keys read with it for the caller's next step (the outcome's card holds
    them), where it would read the card again."""
    revoke_reason = _reason(reason)
    card = _locked_card(card_id, related)
    if transition not in lifecycle.BY_NAME:
        raise BadInput(
            f"Unknown transition {transition!r}; known: {', '.join(sorted(lifecycle.BY_NAME))}."
        )
    t = lifecycle.BY_NAME[transition]
    if not lifecycle.may_trigger(t, roles=caller.roles, system=caller.system):
        _checked(transition, card, caller, revoke_reason)  # raises the role refusal
    if _already_there(transition, card):
        return TransitionOutcome(card=card, applied=False)
    t = _checked(transition, card, caller, revoke_reason)
    if t.name == "activate" and not caller.system:
        _refuse_the_mailer_printer(card, caller)
    if t.dual_control and not caller.system:
        return _approval_request(card=card, transition=t, caller=caller, reason=revoke_reason)
    _apply(
        card=card,
        transition=t,
        caller=caller,
        reason=revoke_reason,
        holder=holder,
        valid_until=valid_until,
    )
    return TransitionOutcome(card=card, applied=True)


def _approval_request(
    *, card: Card, transition: Transition, caller: Caller, reason: RevokeReason | None
) -> TransitionOutcome:
    pending = CardTransitionApproval.objects.filter(
        card=card, transition=transition.name, status=ApprovalStatus.PENDING
    ).first()
    if pending is not None:
        return TransitionOutcome(card=card, applied=False, approval=pending)
    if caller.user_id is None:
        raise Forbidden("A dual-control transition is asked by a named person.")
    pending = CardTransitionApproval.objects.create(
        card=card,
        transition=transition.name,
        reason=reason.value if reason else "",
        requested_by_id=caller.user_id,
    )
    audit_event_create(
        actor=caller.actor,
        action="card.transition_request",
        object_type="card",
        object_id=str(card.pk),
        details={"transition": transition.name, "approval_id": pending.pk, "from": card.status},
    )
    return TransitionOutcome(card=card, applied=False, approval=pending)


def _locked_approval(approval_id: int) -> tuple[Card, CardTransitionApproval]:
    card_id = (
        CardTransitionApproval.objects.filter(pk=approval_id)
        .values_list("card_id", flat=True)
        .first()
    )
    if card_id is None:
        raise NotFound(f"No pending transition #{approval_id}.")
    card = _locked_card(card_id)  # the card first, as every transition does: no lock cycle
    return card, CardTransitionApproval.objects.select_for_update().get(pk=approval_id)


@transaction.atomic
def card_transition_approve(*, approval_id: int, caller: Caller) -> TransitionOutcome:
    """The second person approves a dual-control transition, which is then applied."""
    card, approval = _locked_approval(approval_id)
    if approval.status == ApprovalStatus.APPROVED and approval.decided_by_id == caller.user_id:
        return TransitionOutcome(card=card, applied=False, approval=approval)
    if approval.status != ApprovalStatus.PENDING:
        raise Conflict(f"Transition #{approval.pk} is already {approval.status}.")
    if caller.user_id is None or caller.user_id == approval.requested_by_id:
        raise Forbidden(
            "A dual-control transition is approved by someone other than its requester."
        )
    reason = _reason(approval.reason)
    t = _checked(approval.transition, card, caller, reason)
    requester = approval.requested_by
    _apply(
        card=card,
        transition=t,
        caller=caller,
        reason=reason,
        approved_by=caller,
        extra={"requested_by": requester.get_username(), "approval_id": approval.pk},
    )
    approval.status = ApprovalStatus.APPROVED
    approval.decided_by_id = caller.user_id
    approval.decided_at = timezone.now()
    approval.save(update_fields=["status", "decided_by", "decided_at"])
    return TransitionOutcome(card=card, applied=True, approval=approval)


@transaction.atomic
def card_transition_reject(*, approval_id: int, caller: Caller) -> CardTransitionApproval:
    """Refuse a pending dual-control transition (the requester may withdraw their own)."""
    card, approval = _locked_approval(approval_id)
    if approval.status == ApprovalStatus.REJECTED:
        return approval
    if approval.status != ApprovalStatus.PENDING:
        raise Conflict(f"Transition #{approval.pk} is already {approval.status}.")
    t = lifecycle.BY_NAME[approval.transition]
    if caller.user_id != approval.requested_by_id and not (caller.roles & t.roles):
        raise Forbidden(f"Rejecting {t.name} needs one of the roles of the transition.")
    approval.status = ApprovalStatus.REJECTED
    approval.decided_by_id = caller.user_id
    approval.decided_at = timezone.now()
    approval.save(update_fields=["status", "decided_by", "decided_at"])
    audit_event_create(
        actor=caller.actor,
        action="card.transition_reject",
        object_type="card",
        object_id=str(card.pk),
        details={"transition": t.name, "approval_id": approval.pk},
    )
    return approval


def card_revoke_consequence(
    *,
    card_id: UUID,
    reason: RevokeReason,
    caller: Caller,
    extra: dict[str, object] | None = None,
) -> bool:
    """Revoke a card in service as the consequence of a registry fact the caller was allowed to
    record (a holder who left the profession, was struck off or died; a bulk revocation approved
    under dual control), whatever the caller's card roles. Joins the caller's transaction; False
    when the card is already out of service."""
    card = _locked_card(card_id)
    if card.status not in lifecycle.LIVE_STATUSES:
        return False
    _apply(
        card=card, transition=lifecycle.BY_NAME["revoke"], caller=caller, reason=reason, extra=extra
    )
    return True


def cards_revoke_consequence(
    *,
    card_ids: list[UUID],
    reason: RevokeReason,
    caller: Caller,
    extra: dict[str, object] | None = None,
) -> list[UUID]:
    """:func:`card_revoke_consequence` for many cards at once, set-based (a bulk revocation's
    batch): the cards are locked in key order, those out of service are skipped (the lifecycle's
    sources for ``revoke``), one UPDATE moves the others, their certificates and deny-list
    entries follow in bulk (``effects.apply_many``), and one chain extension appends one
    ``card.revoke`` event per card with the details a single revocation writes. Joins the
    caller's transaction; returns the ids of the cards it revoked."""
    transition = lifecycle.BY_NAME["revoke"]
    cards = [
        card
        for card in Card.objects.select_for_update()
        .filter(pk__in=card_ids)
        .only("pk", "status", "card_number", "desfire_uid")
        .order_by("pk")
        if card.status in transition.sources
    ]
    if not cards:
        return []
    now = timezone.now()
    sources = {card.pk: card.status for card in cards}
    Card.objects.filter(pk__in=list(sources)).update(
        status=transition.target, status_changed_at=now, revoke_reason=reason.value
    )
    for card in cards:
        card.status, card.status_changed_at = transition.target, now
        card.revoke_reason = reason.value
    done = effects.apply_many(cards=cards, transition=transition, reason=reason, actor=caller.actor)
    audit_events_create(
        [
            AuditEntry(
                actor=caller.actor,
                action=f"card.{transition.name}",
                object_type="card",
                object_id=str(card.pk),
                details={
                    "transition": transition.name,
                    "from": sources[card.pk],
                    "to": card.status,
                    "card_number": card.card_number or "",
                    **done[card.pk],
                    **(extra or {}),
                    "reason": reason.value,
                },
            )
            for card in cards
        ]
    )
    return [card.pk for card in cards]
