"""Dual control: one person asks for a sensitive act, a second person approves it, then it runs.

A feature registers each kind of act once, at import time of its module (``register``): the role
both people must hold, and the handler that carries the act out. ``act_request`` records the
request (audited); ``act_approve`` checks that the approver is another person holding the role,
runs the handler inside the same transaction, and records the outcome (audited); ``act_refuse``
and ``act_cancel`` close a request without effect. A handler that raises an ``ApplicationError``
leaves the act pending and nothing changed: the approver sees why.

Card transitions keep their own two-person path (``cms.services.cards``); this module is for acts
that are not a card transition: CA revocation, bulk revocation, station enrollment, relying-party
key export, migration waves, and the like.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_event_create
from core.chain import check_details
from core.errors import BadInput, Conflict, Forbidden, NotFound
from core.models import DualControlAct
from core.roles import Role, roles_of

__all__ = [
    "ActKind",
    "act_approve",
    "act_cancel",
    "act_list",
    "act_refuse",
    "act_request",
    "kind_of",
    "register",
]

Handler = Callable[[DualControlAct, Actor, Actor], Mapping[str, Any] | None]
"""``handler(act, requester, approver)`` carries the act out and returns what to record of it."""


@dataclass(frozen=True, slots=True)
class ActKind:
    name: str
    role: Role
    label: str
    handler: Handler
    validate: Callable[[Mapping[str, Any]], str] | None = None
    """Checks ``params`` at request time (raises ``BadInput``) and returns the one-line summary
    shown to the approver; without it the summary is the label."""


_KINDS: dict[str, ActKind] = {}


def register(kind: ActKind) -> ActKind:
    """Declare a kind of act. Registering the same name twice with another handler is a bug."""
    existing = _KINDS.get(kind.name)
    if existing is not None and existing != kind:
        raise RuntimeError(f"dual-control act {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind
    return kind


def kind_of(name: str) -> ActKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise BadInput(f"Unknown dual-control act {name!r}.") from None


def _ttl() -> timedelta:
    return timedelta(hours=float(getattr(settings, "DUAL_CONTROL_TTL_HOURS", 24)))


def _require_role(user: AbstractBaseUser, kind: ActKind, what: str) -> None:
    if kind.role not in roles_of(user):
        raise Forbidden(f"Only a {kind.role.label.lower()} may {what} this act ({kind.label}).")


def act_request(
    *, kind: str, params: Mapping[str, Any], user: AbstractBaseUser, reason: str
) -> DualControlAct:
    """Record a request for a second person's approval. Nothing is carried out yet."""
    act_kind = kind_of(kind)
    _require_role(user, act_kind, "ask for")
    reason = reason.strip()
    if not reason:
        raise BadInput("Give the reason for this act; the second person reads it.")
    payload = dict(params)
    check_details(payload)
    summary = act_kind.validate(payload) if act_kind.validate else act_kind.label
    now = timezone.now()
    actor = Actor.for_user(user)
    with transaction.atomic():
        act = DualControlAct.objects.create(
            kind=kind,
            params=payload,
            summary=summary[:300],
            reason=reason,
            requested_by_id=user.pk,
            requested_at=now,
            expires_at=now + _ttl(),
        )
        audit_event_create(
            actor=actor,
            action="dual_control.requested",
            object_type="dual_control_act",
            object_id=str(act.pk),
            details={"kind": kind, "summary": act.summary, "reason": reason},
        )
    return act


def _decide(act_id: int, decide: Callable[[DualControlAct], DualControlAct]) -> DualControlAct:
    """Lock the act, then decide it if it is still pending and not past its deadline."""
    with transaction.atomic():
        try:
            act = DualControlAct.objects.select_for_update().get(pk=act_id)
        except DualControlAct.DoesNotExist:
            raise NotFound(f"No dual-control act #{act_id}.") from None
        if act.status != DualControlAct.Status.PENDING:
            raise Conflict(f"This act is already {act.get_status_display().lower()}.")
        if act.expires_at > timezone.now():
            return decide(act)
        act.status = DualControlAct.Status.EXPIRED
        act.save(update_fields=["status"])
        audit_event_create(
            actor=Actor.system("dual-control"),
            action="dual_control.expired",
            object_type="dual_control_act",
            object_id=str(act.pk),
            details={"kind": act.kind},
        )
    # Raised after the block: the expiry is committed, the decision refused.
    raise Conflict("This act was not approved in time; ask for it again.")


def act_approve(*, act_id: int, user: AbstractBaseUser, note: str = "") -> DualControlAct:
    """The second person approves: the act is carried out now, in this transaction."""

    def decide(act: DualControlAct) -> DualControlAct:
        act_kind = kind_of(act.kind)
        if act.requested_by_id == user.pk:
            raise Forbidden("A second person must approve this act; you asked for it.")
        _require_role(user, act_kind, "approve")
        requester = Actor.for_user(act.requested_by)
        approver = Actor.for_user(user)
        outcome = dict(act_kind.handler(act, requester, approver) or {})
        check_details(outcome)
        act.status = DualControlAct.Status.EXECUTED
        act.decided_by_id = user.pk
        act.decided_at = timezone.now()
        act.decision_note = note.strip()
        act.result = outcome
        act.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "result"])
        audit_event_create(
            actor=approver,
            action="dual_control.approved",
            object_type="dual_control_act",
            object_id=str(act.pk),
            details={
                "kind": act.kind,
                "summary": act.summary,
                "requested_by": requester.label,
                "result": outcome,
            },
        )
        return act

    return _decide(act_id, decide)


def act_refuse(*, act_id: int, user: AbstractBaseUser, note: str) -> DualControlAct:
    """The second person refuses: nothing is carried out."""

    def decide(act: DualControlAct) -> DualControlAct:
        act_kind = kind_of(act.kind)
        if act.requested_by_id == user.pk:
            raise Forbidden("Withdraw your own request instead of refusing it.")
        _require_role(user, act_kind, "refuse")
        if not note.strip():
            raise BadInput("Say why you refuse; the requester reads it.")
        act.status = DualControlAct.Status.REFUSED
        act.decided_by_id = user.pk
        act.decided_at = timezone.now()
        act.decision_note = note.strip()
        act.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        audit_event_create(
            actor=Actor.for_user(user),
            action="dual_control.refused",
            object_type="dual_control_act",
            object_id=str(act.pk),
            details={"kind": act.kind, "note": act.decision_note},
        )
        return act

    return _decide(act_id, decide)


def act_cancel(*, act_id: int, user: AbstractBaseUser) -> DualControlAct:
    """The requester withdraws a pending request."""

    def decide(act: DualControlAct) -> DualControlAct:
        if act.requested_by_id != user.pk:
            raise Forbidden("Only the person who asked for this act may withdraw it.")
        act.status = DualControlAct.Status.CANCELLED
        act.decided_at = timezone.now()
        act.save(update_fields=["status", "decided_at"])
        audit_event_create(
            actor=Actor.for_user(user),
            action="dual_control.cancelled",
            object_type="dual_control_act",
            object_id=str(act.pk),
            details={"kind": act.kind},
        )
        return act

    return _decide(act_id, decide)


def act_list(
    *, user: AbstractBaseUser, status: str | None = DualControlAct.Status.PENDING
) -> QuerySet[DualControlAct]:
    """The acts of the kinds the user's roles may decide, newest first."""
    roles = roles_of(user)
    kinds = [name for name, kind in _KINDS.items() if kind.role in roles]
    acts = DualControlAct.objects.filter(kind__in=kinds).select_related(
        "requested_by", "decided_by"
    )
    return acts.filter(status=status) if status else acts
