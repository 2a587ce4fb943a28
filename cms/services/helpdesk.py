"""The PIN unblock helpdesk (issue 14): offline unblock responses, station reports of PUK unblocks
and PIN try counters.

Offline unblock (docs/offline-unblock.md): an agent records how the holder's identity was checked,
types the challenge the holder reads out, and gets the 8-byte response to read back. The per-card
admin key is derived in the card key store (with PKCS#11 the CMAC runs inside the token) from the
admin master of the version the card row keeps. Every response is an ``UnblockEvent`` and an audit
event with the identity check, never with the response.

Limits, from settings (a window of ``HELPDESK_UNBLOCK_WINDOW_HOURS``, 24 by default):
``HELPDESK_UNBLOCK_CARD_LIMIT`` responses per card (3), ``HELPDESK_UNBLOCK_AGENT_LIMIT`` per agent
(30), and from the ``HELPDESK_UNBLOCK_DUAL_CONTROL_AFTER``-th response of a card in the window on
(1: the second one), a second agent approves first (``core.dual_control``, act
``helpdesk.offline_unblock``); the approval is then used once by the agent who asked. The agent's
account row and then the card row are locked while counting, so two agents at once cannot both
pass a limit.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import pgettext_lazy

from cards import crypto
from cards.products import PIN_REFERENCE, serial_of_card_number
from cards.unblock import format_code
from cms.callers import Caller
from cms.choices import CardStatus, english_label
from cms.models import Card, UnblockEvent
from cms.personalization.keys import card_key_store
from core.actors import Actor
from core.audit import audit_event_create
from core.dual_control import ActKind, act_request, register
from core.errors import BadInput, Conflict, Forbidden, NotFound, PolicyViolation, ServiceUnavailable
from core.models import DualControlAct
from core.roles import Role
from pki.keys.errors import KeyBackendError, KeyBackendUnavailable
from pki.keys.symmetric import admin_key, master_label

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

__all__ = [
    "IDENTITY_METHODS",
    "OfflineUnblock",
    "UnblockLimits",
    "identity_methods",
    "identity_record",
    "offline_unblock_respond",
    "pin_status_report",
    "puk_unblock_report",
    "unblock_history",
    "unblock_limits",
]

ACT_KIND = "helpdesk.offline_unblock"
UNBLOCKABLE = (CardStatus.ACTIVE, CardStatus.SUSPENDED)

IDENTITY_METHODS: dict[str, StrOrPromise] = {
    "callback": pgettext_lazy("identity method", "Call-back to the registered telephone number"),
    "registry_questions": pgettext_lazy("identity method", "Questions from the registry"),
    "in_person_document": pgettext_lazy(
        "identity method", "In person, with an identity document (type and number)"
    ),
}
"""Every method the code knows; ``HELPDESK_IDENTITY_METHODS`` picks the agency's."""


def identity_methods() -> dict[str, StrOrPromise]:
    """The identity-check methods this agency accepts (code → label)."""
    chosen = getattr(settings, "HELPDESK_IDENTITY_METHODS", list(IDENTITY_METHODS))
    return {code: IDENTITY_METHODS[code] for code in chosen if code in IDENTITY_METHODS}


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


@dataclass(frozen=True)
class UnblockLimits:
    """The rate-limit state of a card (and of the agent asking), as the wizard shows it."""

    window_hours: int
    card_limit: int
    card_used: int
    agent_limit: int
    agent_used: int
    dual_control_after: int

    @property
    def approval_needed(self) -> bool:
        return self.dual_control_after > 0 and self.card_used >= self.dual_control_after

    def as_dict(self) -> dict[str, Any]:
        return {
            "window_hours": self.window_hours,
            "card_limit": self.card_limit,
            "card_used": self.card_used,
            "agent_limit": self.agent_limit,
            "agent_used": self.agent_used,
            "dual_control_after": self.dual_control_after,
            "approval_needed": self.approval_needed,
        }


def _responses(since: dt.datetime) -> QuerySet[UnblockEvent]:
    return UnblockEvent.objects.filter(
        kind=UnblockEvent.Kind.OFFLINE_RESPONSE, created_at__gte=since
    )


def unblock_limits(*, card_id: UUID, user_id: int | None) -> UnblockLimits:
    window = _setting("HELPDESK_UNBLOCK_WINDOW_HOURS", 24)
    since = timezone.now() - dt.timedelta(hours=window)
    return UnblockLimits(
        window_hours=window,
        card_limit=_setting("HELPDESK_UNBLOCK_CARD_LIMIT", 3),
        card_used=_responses(since).filter(card_id=card_id).count(),
        agent_limit=_setting("HELPDESK_UNBLOCK_AGENT_LIMIT", 30),
        agent_used=_responses(since).filter(agent_id=user_id).count() if user_id else 0,
        dual_control_after=_setting("HELPDESK_UNBLOCK_DUAL_CONTROL_AFTER", 1),
    )


def unblock_history(*, card_id: UUID) -> QuerySet[UnblockEvent]:
    return UnblockEvent.objects.filter(card_id=card_id).select_related("agent")


def _identity(method: str, reference: str) -> tuple[str, str]:
    methods = identity_methods()
    if method not in methods:
        raise BadInput(
            f"Record how the holder's identity was checked: one of {', '.join(methods)}.",
            extra={"fields": {"identity_method": sorted(methods)}},
        )
    reference = reference.strip()
    if not reference:
        raise BadInput(
            "Note what the identity check used (number called, questions asked, document number).",
            extra={"fields": {"identity_reference": ["required"]}},
        )
    return method, reference[:200]


def identity_record(method: str, reference: str) -> tuple[str, str]:
    """The identity check an agent records (method, reference), checked: 400 if it is missing or
    a method this agency does not accept."""
    return _identity(method, reference)


def _challenge(text: str) -> bytes:
    cleaned = re.sub(r"[\s-]", "", text)
    if len(cleaned) != 2 * crypto.UNBLOCK_CHALLENGE_LENGTH or not re.fullmatch(
        r"[0-9A-Fa-f]+", cleaned
    ):
        raise BadInput(
            "The challenge is 16 hexadecimal digits, as the holder's software shows it "
            "(e.g. 0102-0304-0506-0708).",
            extra={"fields": {"challenge": ["16 hexadecimal digits"]}},
        )
    return bytes.fromhex(cleaned)


def _unblockable(card: Card) -> None:
    if card.status not in UNBLOCKABLE:
        raise Conflict(
            f"A card that is {english_label(CardStatus(card.status))} cannot be unblocked; "
            "only an active or suspended card can.",
            extra={"status": card.status},
        )
    if not card.card_number or not card.admin_key_version:
        raise Conflict(
            "This card has no admin key recorded (not personalized by this system, or a product "
            "without offline unblock).",
            extra={"status": card.status},
        )


def _compute(card: Card, challenge: bytes) -> bytes:
    assert card.card_number is not None and card.admin_key_version is not None
    serial = serial_of_card_number(card.card_number)
    version = card.admin_key_version
    store = card_key_store()
    try:
        key = admin_key(store, master_label("admin", version), serial, version)
    except KeyBackendUnavailable as exc:
        raise ServiceUnavailable(f"The card key store is unavailable: {exc}") from None
    except KeyBackendError as exc:
        raise ServiceUnavailable(f"The card key store refused: {exc}") from None
    return crypto.unblock_response(key, serial, version, PIN_REFERENCE, challenge)


@dataclass(frozen=True)
class OfflineUnblock:
    """Either ``response`` (8 bytes, to read out once) or ``approval`` (pending act)."""

    card: Card
    limits: UnblockLimits
    response: bytes | None = None
    approval: DualControlAct | None = None
    event: UnblockEvent | None = None

    @property
    def display(self) -> str | None:
        return format_code(self.response) if self.response is not None else None


def _approval_validate(params: Mapping[str, Any]) -> str:
    card_id = params.get("card_id")
    if not isinstance(card_id, str):
        raise BadInput("card_id is required.")
    return f"Offline PIN unblock of card {params.get('card_number', card_id)} (limit reached)"


def _approval_handler(
    act: DualControlAct, requester: Actor, approver: Actor
) -> Mapping[str, Any] | None:
    # The approval only unlocks one more response for the agent who asked; it is used by
    # offline_unblock_respond(approval=act.pk), where the response is computed and read out.
    return {"card_id": act.params["card_id"], "usable_by": requester.label}


register(
    ActKind(
        name=ACT_KIND,
        role=Role.HELPDESK_AGENT,
        label="Offline PIN unblock beyond the threshold",
        handler=_approval_handler,
        validate=_approval_validate,
    )
)


def _lock_agent(user_id: int) -> None:
    get_user_model().objects.select_for_update().filter(pk=user_id).first()


def _approval_take(approval_id: int, *, card: Card, caller: Caller) -> DualControlAct:
    try:
        act = DualControlAct.objects.select_for_update().get(pk=approval_id, kind=ACT_KIND)
    except DualControlAct.DoesNotExist:
        raise NotFound(f"No offline-unblock approval #{approval_id}.") from None
    if act.params.get("card_id") != str(card.pk) or act.requested_by_id != caller.user_id:
        raise Forbidden("This approval was given for another card or another agent.")
    if act.status != DualControlAct.Status.EXECUTED:
        raise Conflict(
            f"The approval is {act.get_status_display().lower()}; a second agent must approve it.",
            extra={"approval": act.pk, "approval_status": act.status},
        )
    if UnblockEvent.objects.filter(approval=act).exists():
        raise Conflict("This approval was already used; ask for another one.")
    return act


def offline_unblock_respond(
    *,
    card_id: UUID,
    challenge: str,
    identity_method: str,
    identity_reference: str,
    caller: Caller,
    reason: str = "",
    approval_id: int | None = None,
) -> OfflineUnblock:
    """Compute the response to ``challenge`` for a card, or ask for a second agent's approval."""
    if Role.HELPDESK_AGENT not in caller.roles or caller.user_id is None:
        raise Forbidden("Only a helpdesk agent computes unblock responses.")
    method, reference = _identity(identity_method, identity_reference)
    value = _challenge(challenge)
    with transaction.atomic():
        _lock_agent(caller.user_id)  # agent first, then card: one order everywhere
        try:
            card = Card.objects.select_for_update().get(pk=card_id)
        except Card.DoesNotExist:
            raise NotFound(f"No card {card_id}.") from None
        _unblockable(card)
        limits = unblock_limits(card_id=card.pk, user_id=caller.user_id)
        refusal = {"limits": limits.as_dict()}
        if limits.card_used >= limits.card_limit:
            raise PolicyViolation(
                f"This card already had {limits.card_used} unblock responses in the last "
                f"{limits.window_hours} h (limit {limits.card_limit}); try again later or issue "
                "new codes.",
                extra=refusal,
            )
        if limits.agent_used >= limits.agent_limit:
            raise PolicyViolation(
                f"You computed {limits.agent_used} unblock responses in the last "
                f"{limits.window_hours} h (limit {limits.agent_limit}); another agent must take "
                "this call.",
                extra=refusal,
            )
        act = None
        if limits.approval_needed:
            if approval_id is None:
                if not reason.strip():
                    reason = f"identity checked by {method}"
                act = act_request(
                    kind=ACT_KIND,
                    params={"card_id": str(card.pk), "card_number": card.card_number or ""},
                    user=get_user_model().objects.get(pk=caller.user_id),
                    reason=reason,
                )
                return OfflineUnblock(card=card, limits=limits, approval=act)
            act = _approval_take(approval_id, card=card, caller=caller)
        response = _compute(card, value)
        event = UnblockEvent.objects.create(
            card=card,
            kind=UnblockEvent.Kind.OFFLINE_RESPONSE,
            agent_id=caller.user_id,
            identity_method=method,
            identity_reference=reference,
            challenge=value.hex().upper(),
            outcome="response_given",
            approval=act,
        )
        audit_event_create(
            actor=caller.actor,
            action="card.offline_unblock_response",
            object_type="card",
            object_id=str(card.pk),
            details={
                "event_id": event.pk,
                "identity_method": method,
                "identity_reference": reference,
                "challenge": event.challenge,
                "admin_key_version": card.admin_key_version,
                "approval": act.pk if act else None,
            },
        )
        used = UnblockLimits(**{**limits.__dict__, "card_used": limits.card_used + 1})
        used = UnblockLimits(**{**used.__dict__, "agent_used": limits.agent_used + 1})
        return OfflineUnblock(card=card, limits=used, response=response, event=event)


PUK_OUTCOMES = ("unblocked", "wrong_puk", "puk_blocked")


def _station_card(card_number: str) -> Card:
    try:
        card = Card.objects.select_for_update().get(card_number=card_number)
    except Card.DoesNotExist:
        raise NotFound(f"No card numbered {card_number}.") from None
    return card


def _tries(value: int | None, name: str) -> int | None:
    if value is not None and not 0 <= value <= 15:
        raise BadInput(f"{name} is 0 to 15.", extra={"fields": {name: ["0 to 15"]}})
    return value


def puk_unblock_report(
    *, card_number: str, outcome: str, puk_tries_left: int | None, caller: Caller, station: str
) -> UnblockEvent:
    """A station ran RESET RETRY COUNTER with the holder's PUK (entered on the station, never sent
    here) and reports how it went and the PUK tries left; a blocked PUK shows on the card page."""
    if outcome not in PUK_OUTCOMES:
        raise BadInput(
            f"outcome is one of {', '.join(PUK_OUTCOMES)}.",
            extra={"fields": {"outcome": list(PUK_OUTCOMES)}},
        )
    _tries(puk_tries_left, "puk_tries_left")
    if outcome == "puk_blocked":
        puk_tries_left = 0
    with transaction.atomic():
        # What happened on the card is recorded whatever the card's state (the act is done).
        card = _station_card(card_number)
        now = timezone.now()
        fields: dict[str, Any] = {"puk_tries_left": puk_tries_left, "pin_status_at": now}
        if outcome == "unblocked":
            fields["pin_tries_left"] = _setting("HELPDESK_PIN_TRIES", 3)
        Card.objects.filter(pk=card.pk).update(**fields)
        event = UnblockEvent.objects.create(
            card=card,
            kind=UnblockEvent.Kind.PUK_UNBLOCK,
            outcome=outcome,
            puk_tries_left=puk_tries_left,
            pin_tries_left=fields.get("pin_tries_left"),
        )
        audit_event_create(
            actor=caller.actor,
            action="card.puk_unblock",
            object_type="card",
            object_id=str(card.pk),
            details={
                "event_id": event.pk,
                "outcome": outcome,
                "puk_tries_left": puk_tries_left,
                "station": station,
            },
        )
    return event


def pin_status_report(
    *,
    card_number: str,
    pin_tries_left: int | None,
    puk_tries_left: int | None,
    caller: Caller,
    station: str,
) -> UnblockEvent:
    """A station (or cpsclient through one) read the try counters without consuming a try."""
    _tries(pin_tries_left, "pin_tries_left")
    _tries(puk_tries_left, "puk_tries_left")
    with transaction.atomic():
        card = _station_card(card_number)
        Card.objects.filter(pk=card.pk).update(
            pin_tries_left=pin_tries_left,
            puk_tries_left=puk_tries_left,
            pin_status_at=timezone.now(),
        )
        event = UnblockEvent.objects.create(
            card=card,
            kind=UnblockEvent.Kind.PIN_STATUS,
            outcome="read",
            pin_tries_left=pin_tries_left,
            puk_tries_left=puk_tries_left,
        )
        audit_event_create(
            actor=caller.actor,
            action="card.pin_status",
            object_type="card",
            object_id=str(card.pk),
            details={
                "event_id": event.pk,
                "pin_tries_left": pin_tries_left,
                "puk_tries_left": puk_tries_left,
                "station": station,
            },
        )
    return event
