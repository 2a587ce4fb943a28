"""The card lifecycle of DESIGN.md §6 as one declared table (pure: no database, no I/O).

The docs table (``manage.py lifecycle_table``), the API's allowed actions and the tests are all
generated from ``TRANSITIONS``. Services check a move with :func:`check` and then carry out the
transition's ``effects`` through ``cms.effects``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from cms.choices import CardStatus, RequestKind, RequestStatus, RevokeReason
from core.role_names import Role
from pki.domain.reasons import RevocationReason


class Effect(StrEnum):
    HOLD_CERTIFICATES = "hold_certificates"
    RELEASE_HOLD = "release_hold"
    REVOKE_CERTIFICATES = "revoke_certificates"
    DENY_CONTACTLESS = "deny_contactless"
    ALLOW_CONTACTLESS = "allow_contactless"
    SUPERSEDE_REPLACED_CARD = "supersede_replaced_card"


@dataclass(frozen=True, slots=True)
class Transition:
    name: str
    sources: frozenset[CardStatus]
    target: CardStatus
    roles: frozenset[Role]
    effects: tuple[Effect, ...] = ()
    dual_control: bool = False
    system: bool = False  # a scheduled task or the personalization session may trigger it
    needs_reason: bool = False
    summary: str = ""


def _t(
    name: str,
    sources: Iterable[CardStatus],
    target: CardStatus,
    roles: Iterable[Role],
    **kwargs: object,
) -> Transition:
    return Transition(name, frozenset(sources), target, frozenset(roles), **kwargs)  # type: ignore[arg-type]


OPERATOR = Role.ISSUANCE_OPERATOR
HELPDESK = Role.HELPDESK_AGENT
SECURITY_OFFICER = Role.SECURITY_OFFICER
LIVE_STATUSES = (CardStatus.ISSUED, CardStatus.ACTIVE, CardStatus.SUSPENDED)
# Steps only the system takes (the stock service, the personalization session): no person's role
# may trigger them, so the API never offers them (issue 11 §2).
SYSTEM_ONLY: tuple[Role, ...] = ()

TRANSITIONS: tuple[Transition, ...] = (
    _t("allocate", [CardStatus.IN_STOCK], CardStatus.ALLOCATED, SYSTEM_ONLY, system=True,
       summary="a blank card is set aside for a holder's request"),
    _t("personalize", [CardStatus.ALLOCATED], CardStatus.PERSONALIZING, SYSTEM_ONLY, system=True,
       summary="a station session starts writing the card"),
    _t("issue", [CardStatus.PERSONALIZING], CardStatus.ISSUED, SYSTEM_ONLY, system=True,
       effects=(Effect.HOLD_CERTIFICATES,),
       summary="personalization verified; certificates on hold until activation"),
    _t("wipe", [CardStatus.PERSONALIZING], CardStatus.IN_STOCK, SYSTEM_ONLY, system=True,
       effects=(Effect.REVOKE_CERTIFICATES,),
       summary="unfinished card wiped back to stock; its certificates revoked"),
    _t("spoil", [CardStatus.PERSONALIZING], CardStatus.SPOILED, SYSTEM_ONLY, system=True,
       effects=(Effect.REVOKE_CERTIFICATES,),
       summary="unfinished card unusable; its certificates revoked"),
    _t("activate", [CardStatus.ISSUED], CardStatus.ACTIVE, [OPERATOR, HELPDESK],
       effects=(Effect.RELEASE_HOLD, Effect.SUPERSEDE_REPLACED_CARD),
       summary="the holder received the card; hold released, a replaced card is superseded"),
    _t("suspend", [CardStatus.ACTIVE], CardStatus.SUSPENDED, [OPERATOR, HELPDESK, SECURITY_OFFICER],
       effects=(Effect.HOLD_CERTIFICATES, Effect.DENY_CONTACTLESS),
       summary="certificates on hold, DESFire UID on the deny list"),
    _t("reinstate", [CardStatus.SUSPENDED], CardStatus.ACTIVE,
       [OPERATOR, HELPDESK, SECURITY_OFFICER], dual_control=True,
       effects=(Effect.RELEASE_HOLD, Effect.ALLOW_CONTACTLESS),
       summary="hold released, deny-list entry removed"),
    _t("revoke", LIVE_STATUSES, CardStatus.REVOKED, [OPERATOR, HELPDESK, SECURITY_OFFICER],
       needs_reason=True,
       effects=(Effect.REVOKE_CERTIFICATES, Effect.DENY_CONTACTLESS),
       summary="certificates revoked with the mapped RFC 5280 reason; contactless denied"),
    _t("expire", LIVE_STATUSES, CardStatus.EXPIRED, [SECURITY_OFFICER], system=True,
       effects=(Effect.DENY_CONTACTLESS,),
       summary="end of validity; contactless denied"),
    _t("destroy", [CardStatus.REVOKED, CardStatus.EXPIRED, CardStatus.SPOILED],
       CardStatus.DESTROYED, [OPERATOR, SECURITY_OFFICER], dual_control=True,
       summary="physical destruction, witnessed by a second person"),
)  # fmt: skip

BY_NAME: dict[str, Transition] = {t.name: t for t in TRANSITIONS}

# RFC 5280 reason for each operator reason (DESIGN.md §6).
REVOCATION_REASON: dict[RevokeReason, RevocationReason] = {
    RevokeReason.LOST: RevocationReason.KEY_COMPROMISE,
    RevokeReason.STOLEN: RevocationReason.KEY_COMPROMISE,
    RevokeReason.COMPROMISED: RevocationReason.KEY_COMPROMISE,
    RevokeReason.SUPERSEDED: RevocationReason.SUPERSEDED,
    RevokeReason.DAMAGED: RevocationReason.SUPERSEDED,
    RevokeReason.HOLDER_LEFT: RevocationReason.CESSATION_OF_OPERATION,
    RevokeReason.DECEASED: RevocationReason.CESSATION_OF_OPERATION,
    RevokeReason.STRUCK_OFF: RevocationReason.PRIVILEGE_WITHDRAWN,
}
# Certificates of a card that never left personalization were never in service.
UNFINISHED_CARD_REASON = RevocationReason.CESSATION_OF_OPERATION


class TransitionRefused(Exception):
    """Base of the refusals of :func:`check`; services translate them into API errors."""


class UnknownTransition(TransitionRefused):
    pass


class InvalidTransition(TransitionRefused):
    """The card's state does not allow this transition."""

    def __init__(self, transition: Transition, status: CardStatus) -> None:
        super().__init__(f"{transition.name} is not allowed from {status.value}")
        self.transition = transition
        self.status = status


class RoleRefused(TransitionRefused):
    pass


class ReasonRequired(TransitionRefused):
    pass


def transition_named(name: str) -> Transition:
    try:
        return BY_NAME[name]
    except KeyError:
        raise UnknownTransition(
            f"unknown transition {name!r}; known: {', '.join(sorted(BY_NAME))}"
        ) from None


def allowed_from(status: CardStatus) -> list[Transition]:
    """Transitions whose sources include ``status``, in table order."""
    return [t for t in TRANSITIONS if status in t.sources]


def may_trigger(transition: Transition, *, roles: frozenset[Role], system: bool) -> bool:
    return (system and transition.system) or bool(transition.roles & roles)


def person_transitions() -> list[Transition]:
    """The transitions a person may ask for (through the API or the console)."""
    return [t for t in TRANSITIONS if t.roles]


def check(
    name: str,
    status: CardStatus,
    *,
    roles: frozenset[Role],
    system: bool = False,
    reason: RevokeReason | None = None,
) -> Transition:
    """The transition ``name`` if a caller with ``roles`` may apply it to a card in ``status``."""
    transition = transition_named(name)
    if not may_trigger(transition, roles=roles, system=system):
        if not transition.roles:
            raise RoleRefused(
                f"{transition.name} is a step the system takes (stock service, personalization "
                "session); no person applies it"
            )
        allowed = ", ".join(sorted(r.value for r in transition.roles))
        raise RoleRefused(f"{transition.name} needs one of the roles: {allowed}")
    if status not in transition.sources:
        raise InvalidTransition(transition, status)
    if transition.needs_reason and reason is None:
        choices = ", ".join(r.value for r in RevokeReason)
        raise ReasonRequired(f"{transition.name} needs a reason: one of {choices}")
    return transition


def revocation_reason_for(transition: Transition, reason: RevokeReason | None) -> RevocationReason:
    """The RFC 5280 reason with which ``transition`` revokes the card's certificates."""
    if reason is not None:
        return REVOCATION_REASON[reason]
    return UNFINISHED_CARD_REASON


# --- requests -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestTransition:
    name: str
    sources: frozenset[RequestStatus]
    target: RequestStatus
    roles: frozenset[Role]
    system: bool = False
    summary: str = ""


def _r(
    name: str,
    sources: Iterable[RequestStatus],
    target: RequestStatus,
    roles: Iterable[Role],
    *,
    system: bool = False,
    summary: str = "",
) -> RequestTransition:
    return RequestTransition(name, frozenset(sources), target, frozenset(roles), system, summary)


REQUEST_TRANSITIONS: tuple[RequestTransition, ...] = (
    _r("submit", [RequestStatus.DRAFT], RequestStatus.SUBMITTED, [OPERATOR, HELPDESK],
       summary="goes straight on to approved when no second approver is required"),
    _r("approve", [RequestStatus.SUBMITTED], RequestStatus.APPROVED, [OPERATOR, SECURITY_OFFICER],
       summary="by a second person, never the requester"),
    _r("reject", [RequestStatus.DRAFT, RequestStatus.SUBMITTED], RequestStatus.REJECTED,
       [OPERATOR, SECURITY_OFFICER],
       summary="a second person refuses, or the requester withdraws"),
    _r("queue", [RequestStatus.APPROVED, RequestStatus.FAILED], RequestStatus.QUEUED, [OPERATOR],
       system=True,
       summary="a blank card of the product is allocated from stock"),
    _r("start", [RequestStatus.QUEUED], RequestStatus.PERSONALIZING, SYSTEM_ONLY, system=True,
       summary="a station session starts writing the card"),
    _r("complete", [RequestStatus.PERSONALIZING], RequestStatus.DONE, SYSTEM_ONLY, system=True,
       summary="the card is ISSUED"),
    _r("fail", [RequestStatus.PERSONALIZING], RequestStatus.FAILED, SYSTEM_ONLY, system=True,
       summary="the card is wiped to stock or spoiled; queue again to retry"),
)  # fmt: skip

REQUEST_BY_NAME: dict[str, RequestTransition] = {t.name: t for t in REQUEST_TRANSITIONS}
# Kinds of request that always wait for a second approver (products may require it too).
# Renewal and replacement put a second card in the holder's hands (issue 11 §4).
DUAL_CONTROL_KINDS = frozenset({RequestKind.RENEWAL, RequestKind.REPLACEMENT})


def request_needs_second_approval(kind: RequestKind, *, product_requires: bool) -> bool:
    return product_requires or kind in DUAL_CONTROL_KINDS


def markdown_table() -> str:
    """The lifecycle table as Markdown (``docs/lifecycle.md`` is this output)."""
    lines = [
        "# Card lifecycle",
        "",
        "Generated by `manage.py lifecycle_table` from `cms/lifecycle.py`; do not edit by hand.",
        "",
        "| transition | from | to | roles | system | second approver | effects | summary |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = list(CardStatus)
    for t in TRANSITIONS:
        sources = ", ".join(s.value for s in sorted(t.sources, key=order.index))
        roles = ", ".join(sorted(r.value for r in t.roles)) or "(system only)"
        effects = ", ".join(e.value for e in t.effects) or "—"
        lines.append(
            f"| `{t.name}` | {sources} | {t.target.value} | {roles} | "
            f"{'yes' if t.system else 'no'} | {'yes' if t.dual_control else 'no'} | "
            f"{effects} | {t.summary} |"
        )
    lines += ["", "## Revocation reasons (RFC 5280)", "", "| reason | CRL reason |", "|---|---|"]
    for ours, rfc in REVOCATION_REASON.items():
        lines.append(f"| {ours.value} | {rfc.value} |")
    lines.append(f"| (wipe, spoil) | {UNFINISHED_CARD_REASON.value} |")
    lines += [
        "",
        "## Card requests",
        "",
        "| transition | from | to | roles | system | summary |",
        "|---|---|---|---|---|---|",
    ]
    request_order = list(RequestStatus)
    for r in REQUEST_TRANSITIONS:
        sources = ", ".join(s.value for s in sorted(r.sources, key=request_order.index))
        roles = ", ".join(sorted(role.value for role in r.roles)) or "(system only)"
        lines.append(
            f"| `{r.name}` | {sources} | {r.target.value} | {roles} | "
            f"{'yes' if r.system else 'no'} | {r.summary} |"
        )
    kinds = ", ".join(sorted(k.value for k in DUAL_CONTROL_KINDS))
    lines += [
        "",
        f"Requests of kind {kinds}, and requests for a product marked so, wait in `submitted` "
        "for a second approver; a requester never approves their own request.",
    ]
    return "\n".join(lines) + "\n"
