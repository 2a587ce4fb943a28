"""A session's program lives in the web process that runs it (cms.personalization.session). When
round trips land on another process and then come back (a replica restarted, a station moved),
the first process's program is stale: it resumes from the stored checkpoint instead of refusing
the batch ("Batch n is not the batch in flight")."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cms.personalization.conftest import DrfApi, card_queued, link_of

pytestmark = pytest.mark.django_db(transaction=True)


class TwoProcesses(DrfApi):
    """Exchanges 1-2 in process A, 3-4 in process B, then back in A with A's old programs."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.exchanges = 0
        self.process_a: dict[Any, Any] = {}

    def post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        from cms.personalization import live

        if "/exchange" in path:
            self.exchanges += 1
            if self.exchanges == 3:  # to process B: it holds no program yet
                self.process_a = dict(live._LIVE)
                live._LIVE.clear()
            elif self.exchanges == 5:  # back to process A, whose programs are behind
                live._LIVE.clear()
                live._LIVE.update(self.process_a)
        return super().post(path, body)


def test_a_stale_program_resumes_from_the_checkpoint(scene: Any, virtual_card: Any) -> None:
    from cms.choices import CardStatus
    from cms.models import Card
    from personalization_station.relay import personalize

    request = card_queued(scene, virtual_card)
    api = TwoProcesses(scene.token)
    outcome = personalize(api, link_of(virtual_card))

    assert api.exchanges > 5
    assert outcome.state == "done", outcome.message
    request.refresh_from_db()
    assert Card.objects.get(pk=request.card_id).status == CardStatus.ISSUED
