"""Issue 11 §4: whoever printed a card's PIN mailer saw its PIN; they cannot also activate it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_the_printer_of_the_pin_mailer_cannot_activate_the_card(queued_mailers, caller_for):
    from cms.choices import CardStatus
    from cms.mailers.services import pin_mailer_print
    from cms.models import Card
    from cms.services.cards import card_transition
    from core.errors import Forbidden
    from core.models import AuditEvent

    (mailer,) = queued_mailers(1)
    printer, colleague = caller_for("issuance_operator"), caller_for("issuance_operator")
    pin_mailer_print(mailer_id=mailer.pk, caller=printer)
    before = AuditEvent.objects.count()
    with pytest.raises(Forbidden, match="PIN mailer"):
        card_transition(card_id=mailer.card_id, transition="activate", caller=printer)
    assert Card.objects.get(pk=mailer.card_id).status == CardStatus.ISSUED
    assert AuditEvent.objects.count() == before
    # Reprinted by a colleague: the first printer still saw the PIN (the audit remembers).
    pin_mailer_print(mailer_id=mailer.pk, caller=colleague)
    with pytest.raises(Forbidden):
        card_transition(card_id=mailer.card_id, transition="activate", caller=printer)
    with pytest.raises(Forbidden):
        card_transition(card_id=mailer.card_id, transition="activate", caller=colleague)
    third = caller_for("helpdesk_agent")
    assert card_transition(card_id=mailer.card_id, transition="activate", caller=third).applied
