"""The PIN mailer of a personalization: queued with the card's codes sealed, in the issuance
commit. Letters, print runs and reconciliation live in ``cms.mailers``."""

from __future__ import annotations

from cms.choices import RequestKind
from cms.mailers.services import Code, pin_mailer_queue
from cms.mailers.wording import LetterKind
from cms.models import CardRequest, PinMailer


def pin_mailer_create(*, request: CardRequest, pin: Code, puk: Code) -> PinMailer:
    """Queue the letter of a card just issued (a renewal's card gets the renewal wording); a card
    has one such letter."""
    if request.card is None:
        raise ValueError(f"request {request.pk} completed without a card")
    kind = LetterKind.RENEWAL if request.kind == RequestKind.RENEWAL else LetterKind.ISSUANCE
    return pin_mailer_queue(
        card=request.card, kind=kind, pin=pin, puk=puk, request=request, site=request.pool
    )
