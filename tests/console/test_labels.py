"""The console's labels for the models' choices and for codes stored raw: the list that feeds the
catalogue (``console.labels``) matches the choices (same English, same context, so the same
French), a French page shows the French label, and the API keeps the machine codes."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from cms.choices import CardStatus, english_label
from cms.models import UnblockEvent
from cms.services.helpdesk import IDENTITY_METHODS
from console.labels import CHOICE_LABELS, CODE_LABELS, IDENTITY_METHOD_LABELS, code_label
from tests.cms.conftest import card_make


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_console_list_matches_the_choices(language: str) -> None:
    """Under French a label whose context or English differ from the console's copy is left in
    English and the comparison fails; under English the English strings are compared."""
    with translation.override(language):
        for choices, labels in CHOICE_LABELS.items():
            assert [str(label) for label in choices.labels] == [str(x) for x in labels], choices
        assert [str(x) for x in IDENTITY_METHODS.values()] == [
            str(x) for x in IDENTITY_METHOD_LABELS
        ]


def test_the_choices_and_codes_have_french_labels() -> None:
    with translation.override("fr"):
        assert str(CardStatus.SUSPENDED.label) == "Suspendue"
        assert code_label("puk_blocked", "unblock_outcome") == "PUK bloqué"
        assert code_label("callback", "identity_method").startswith("Rappel")
        assert code_label("an_older_code", "unblock_outcome") == "an_older_code"
        french = [str(x) for labels in CHOICE_LABELS.values() for x in labels]
        french += [str(x) for kind in CODE_LABELS.values() for x in kind.values()]
    with translation.override("en"):
        english = [str(x) for labels in CHOICE_LABELS.values() for x in labels]
        english += [str(x) for kind in CODE_LABELS.values() for x in kind.values()]
    same = {e for e, f in zip(english, french, strict=True) if e == f}
    assert same == {"Active", "Migration CPS3 → CPS4"}  # the same word in both languages


@pytest.mark.django_db
def test_the_helpdesk_history_shows_outcome_and_method_in_french(
    client: Client, make_user: Any, cps4: Any
) -> None:
    card = card_make(cps4, CardStatus.ACTIVE)
    UnblockEvent.objects.create(
        card=card,
        kind=UnblockEvent.Kind.PUK_UNBLOCK,
        identity_method="registry_questions",
        outcome="puk_blocked",
        puk_tries_left=0,
    )
    client.force_login(make_user("helpdesk_agent"))
    url = reverse("console:helpdesk-card", args=[card.pk])
    french = client.get(url, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Questions issues du référentiel" in french and "PUK bloqué" in french
    assert "puk_blocked" not in french
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Questions from the registry" in english and "PUK blocked" in english


@pytest.mark.django_db
def test_the_api_keeps_the_machine_codes(api_client_for: Any, cps4: Any) -> None:
    card = card_make(cps4, CardStatus.SUSPENDED)
    body = api_client_for("auditor").get(f"/api/v1/cards/{card.pk}", HTTP_ACCEPT_LANGUAGE="fr")
    assert body.json()["status"] == "SUSPENDED"


@pytest.mark.django_db
def test_the_service_messages_stay_in_english(cps4: Any) -> None:
    """Messages of the services (the API's errors) name a state in English on a French request."""
    from cms.services.helpdesk import _unblockable
    from core.errors import Conflict

    card = card_make(cps4, CardStatus.IN_STOCK)
    with translation.override("fr"), pytest.raises(Conflict, match="A card that is in stock"):
        _unblockable(card)
    with translation.override("fr"):
        assert english_label(CardStatus.IN_STOCK) == "in stock"
