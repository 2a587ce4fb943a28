"""Helpdesk acts at a station or kiosk (issue 14): PUK unblock and PIN status, reported to the CMS.

The holder types the PUK and the new PIN on the station; they go to the card only (RESET RETRY
COUNTER, P1 00: PUK ‖ new PIN) and never to the CMS, which receives the outcome and the PUK tries
left (``POST /api/v1/station/puk-unblock``). The try counters are read with VERIFY without data,
which consumes no try, and reported (``POST /api/v1/station/pin-status``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from cards.errors import CardError, StatusWordError
from cards.iso7816 import IsoCard, reset_retry_counter
from cards.products import CPS4, PIN_REFERENCE, PUK_REFERENCE, card_number, card_serial
from cards.transport import transmit_apdu

EF_SN_ICC = (0xD003,)


class Api(Protocol):
    def post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]: ...


@dataclass(frozen=True)
class PukOutcome:
    outcome: str  # unblocked | wrong_puk | puk_blocked
    puk_tries_left: int | None


def registry_number(card: IsoCard) -> str:
    """The card number as the registry writes it (``8025000001`` + 10 digits)."""
    card.select_path(EF_SN_ICC)
    serial = card.read_binary(0, 10)
    return card_serial(card_number(serial)).hex()


def tries_left(card: IsoCard, reference: int) -> int | None:
    """VERIFY without data: the tries left, no try consumed (None: the card does not say)."""
    try:
        return card.pin_status(reference)
    except CardError:
        return None


def check_codes(puk: str, new_pin: str) -> None:
    """The product's formats, checked before anything reaches the card."""
    assert CPS4.pin is not None and CPS4.puk is not None
    if not (puk.isdigit() and CPS4.puk.min_length <= len(puk) <= CPS4.puk.max_length):
        raise ValueError(f"the PUK is {CPS4.puk.max_length} digits")
    if not (new_pin.isdigit() and CPS4.pin.min_length <= len(new_pin) <= CPS4.pin.max_length):
        raise ValueError(f"the PIN is {CPS4.pin.max_length} digits")


def puk_unblock(card: IsoCard, puk: str, new_pin: str) -> PukOutcome:
    """RESET RETRY COUNTER with PUK ‖ new PIN; the outcome and the PUK tries left."""
    check_codes(puk, new_pin)
    apdu = reset_retry_counter(PIN_REFERENCE, 0x00, puk=puk.encode(), new_pin=new_pin.encode())
    reply = transmit_apdu(card.transport, apdu.on_channel(card.channel), "RESET RETRY COUNTER")
    if reply.sw == 0x9000:
        return PukOutcome("unblocked", tries_left(card, PUK_REFERENCE))
    if reply.sw & 0xFFF0 == 0x63C0:
        left = reply.sw & 0x0F
        return PukOutcome("puk_blocked" if left == 0 else "wrong_puk", left)
    if reply.sw == 0x6983:
        return PukOutcome("puk_blocked", 0)
    raise StatusWordError("RESET RETRY COUNTER", reply.sw)


def puk_unblock_report(api: Api, card: IsoCard, outcome: PukOutcome) -> dict[str, Any]:
    _, body = api.post(
        "station/puk-unblock",
        {
            "card_number": registry_number(card),
            "outcome": outcome.outcome,
            "puk_tries_left": outcome.puk_tries_left,
        },
    )
    return body


def pin_status_report(api: Api, card: IsoCard) -> dict[str, Any]:
    number = registry_number(card)
    _, body = api.post(
        "station/pin-status",
        {
            "card_number": number,
            "pin_tries_left": tries_left(card, PIN_REFERENCE),
            "puk_tries_left": tries_left(card, PUK_REFERENCE),
        },
    )
    return body
