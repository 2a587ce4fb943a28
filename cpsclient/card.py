"""What cpsclient asks a CPS4 card: its number, its PIN/PUK counters, the offline unblock steps."""

from __future__ import annotations

from dataclasses import dataclass

from cards.errors import CardError, StatusWordError
from cards.iso7816 import IsoCard
from cards.products import PIN_REFERENCE, PUK_REFERENCE, card_number

EF_SN_ICC = (0xD003,)


@dataclass(frozen=True)
class PinState:
    card_number: str
    pin_tries_left: int | None
    """None: verified in this session (not blocked); 0: blocked."""
    puk_tries_left: int | None


def card_number_of(card: IsoCard) -> str:
    """The 10-digit card number from EF.SN.ICC (``3F00/D003``)."""
    card.select_path(EF_SN_ICC)
    return card_number(card.read_binary(0, 10))


def tries_left(card: IsoCard, reference: int) -> int | None:
    """VERIFY without data: the counter, no try consumed; None if the card does not say."""
    try:
        return card.pin_status(reference)
    except (StatusWordError, CardError):
        return None


def pin_state(card: IsoCard) -> PinState:
    number = card_number_of(card)
    return PinState(
        card_number=number,
        pin_tries_left=tries_left(card, PIN_REFERENCE),
        puk_tries_left=tries_left(card, PUK_REFERENCE),
    )
