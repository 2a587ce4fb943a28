"""The bulk audit append (core.audit.audit_events_create): one chain extension for N events,
each its own row and link, verified by the same walk as single appends (PostgreSQL)."""

from __future__ import annotations

import itertools

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from core.actors import Actor
from core.audit import AuditEntry, audit_chain_verify, audit_event_create, audit_events_create
from core.chain import DetailsError, event_hash
from core.models import AuditEvent
from tests.core.test_audit import tamper

pytestmark = pytest.mark.django_db

ACTOR = Actor(kind="system", id="", label="bulk-test")


def entries(n: int, start: int = 0) -> list[AuditEntry]:
    return [
        AuditEntry(
            actor=ACTOR,
            action="card.revoke",
            object_type="card",
            object_id=f"card-{i}",
            details={"i": i, "revoked": [2 * i, 2 * i + 1], "reason": "compromised"},
        )
        for i in range(start, start + n)
    ]


def single(i: int) -> AuditEvent:
    with transaction.atomic():
        return audit_event_create(
            actor=ACTOR, action="card.suspend", object_type="card", object_id=f"one-{i}"
        )


def test_a_bulk_append_extends_the_chain_one_linked_row_per_event():
    first = single(0)
    with transaction.atomic():
        bulk = audit_events_create(entries(250))
    last = single(1)
    assert [e.seq for e in bulk] == list(range(2, 252)) and last.seq == 252
    assert bulk[0].prev_hash == first.hash and last.prev_hash == bulk[-1].hash
    stored = list(AuditEvent.objects.filter(seq__in=[e.seq for e in bulk]).order_by("seq"))
    assert [(e.object_id, e.hash) for e in stored] == [(e.object_id, e.hash) for e in bulk]
    for before, event in itertools.pairwise(stored):
        assert event.prev_hash == before.hash
    assert stored[10].details == {"i": 10, "revoked": [20, 21], "reason": "compromised"}
    assert stored[10].hash == event_hash(
        seq=stored[10].seq, occurred_at=stored[10].occurred_at, actor_kind="system", actor_id="",
        actor_label="bulk-test", action="card.revoke", object_type="card", object_id="card-10",
        details=stored[10].details, prev_hash=stored[9].hash,
    )  # fmt: skip
    report = audit_chain_verify()
    assert report.ok and report.checked == 252 and report.head_hash == last.hash
    call_command("audit_verify")  # the command exits non-zero on a broken chain


def test_a_bulk_append_rolls_back_with_its_transaction_and_leaves_no_gap():
    single(0)
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_events_create(entries(20))
        raise RuntimeError("the change it recorded failed")
    assert AuditEvent.objects.count() == 1
    with transaction.atomic():
        again = audit_events_create(entries(3))
    assert [e.seq for e in again] == [2, 3, 4] and audit_chain_verify().ok


def test_a_forged_row_in_a_bulk_extension_is_found():
    with transaction.atomic():
        audit_events_create(entries(30))
    with tamper() as cursor:
        cursor.execute("UPDATE core_auditevent SET details = %s WHERE seq = 17", ['{"i": 99}'])
    report = audit_chain_verify()
    assert not report.ok and report.first_break is not None and report.first_break.seq == 17


@pytest.mark.django_db(transaction=True)
def test_a_bulk_append_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_events_create(entries(2))
    assert not AuditEvent.objects.exists()


def test_a_bulk_append_refuses_secrets_and_writes_nothing():
    with pytest.raises(DetailsError), transaction.atomic():
        audit_events_create(
            [*entries(2), AuditEntry(ACTOR, "card.revoke", "card", "x", {"pin": "1234"})]
        )
    assert not AuditEvent.objects.exists()
    with transaction.atomic():
        assert audit_events_create([]) == []


def test_the_database_still_refuses_to_rewrite_bulk_rows():
    with transaction.atomic():
        audit_events_create(entries(2))
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM core_auditevent WHERE seq = 1")
