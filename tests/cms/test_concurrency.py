"""Two threads transitioning one card: the row lock lets one win; the other gets 409."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from cms.choices import CardStatus
from cms.models import Card
from cms.services.cards import card_transition
from core.errors import Conflict
from core.models import AuditEvent
from tests.cms.conftest import card_make


def _race(card_id, calls):
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index, transition, caller):
        try:
            barrier.wait()
            results[index] = card_transition(card_id=card_id, transition=transition, caller=caller)
        except Exception as exc:  # the test inspects what each thread got
            results[index] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(i, transition, caller))
        for i, (transition, caller) in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.mark.django_db(transaction=True)
def test_issue_and_wipe_at_once_one_wins_the_other_gets_409(cps4, system):
    card = card_make(cps4, CardStatus.PERSONALIZING)
    results = _race(card.pk, [("issue", system), ("wipe", system)])
    conflicts = [r for r in results if isinstance(r, Conflict)]
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(conflicts) == 1 and len(winners) == 1, results
    card.refresh_from_db()
    assert card.status == winners[0].card.status
    assert conflicts[0].extra["status"] == card.status
    assert conflicts[0].extra["allowed"]  # the loser is told what it could do now
    assert AuditEvent.objects.filter(object_id=str(card.pk)).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_suspension_twice_at_once_applies_once(cps4, make_user):
    from cms.callers import Caller

    card = card_make(cps4, CardStatus.ACTIVE)
    callers = [Caller.for_user(make_user("helpdesk_agent")) for _ in range(2)]
    results = _race(card.pk, [("suspend", c) for c in callers])
    assert not any(isinstance(r, Exception) for r in results), results
    assert sorted(r.applied for r in results) == [False, True]
    assert Card.objects.get(pk=card.pk).status == CardStatus.SUSPENDED
    assert AuditEvent.objects.filter(action="card.suspend").count() == 1
