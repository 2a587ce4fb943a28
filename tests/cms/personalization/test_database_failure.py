"""A database failure in the middle of a round trip (PostgreSQL restarting) rolls the step back
and answers 503; the generator had already moved on, so the station's retry of the same batch
must resume from the checkpoint, not feed the answers to a program that is past them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cms.personalization.conftest import DrfApi, card_queued, link_of

pytestmark = pytest.mark.django_db(transaction=True)


class RetryingApi(DrfApi):
    """As the station's HTTP client: a 503 is retried (once is enough here)."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.retried = 0

    def post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        from personalization_station.client import ApiError

        try:
            return super().post(path, body)
        except ApiError as exc:
            if exc.status != 503:
                raise
            self.retried += 1
            return super().post(path, body)


def test_a_database_failure_mid_step_is_retried_from_the_checkpoint(
    scene: Any, virtual_card: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    from cms.choices import CardStatus
    from cms.models import Card
    from cms.personalization import session
    from personalization_station.relay import personalize

    real = session.certificates_issue
    calls = {"n": 0}

    def failing_once(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:  # the program is suspended at its certificate request
            raise OperationalError("terminating connection due to administrator command")
        return real(*args, **kwargs)

    monkeypatch.setattr(session, "certificates_issue", failing_once)
    request = card_queued(scene, virtual_card)
    api = RetryingApi(scene.token)
    outcome = personalize(api, link_of(virtual_card))
    assert api.retried == 1
    assert outcome.state == "done", outcome
    card = Card.objects.get(pk=request.card_id)
    assert card.status == CardStatus.ISSUED
