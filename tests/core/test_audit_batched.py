"""Audit appends batched over an atomic block (core.audit.audit_appends_batched): the events of
nested services go in together, in order, with one chain lock and head read, in the block's
transaction; those of an inner block rolled back are dropped with it (PostgreSQL)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core.actors import Actor
from core.audit import (
    AuditEntry,
    audit_appends_batched,
    audit_chain_verify,
    audit_event_create,
    audit_events_create,
)
from core.chain import DetailsError
from core.models import AuditEvent

pytestmark = pytest.mark.django_db

ACTOR = Actor(kind="system", id="", label="batch-test")


def append(object_id: str, **details: object) -> AuditEvent:
    return audit_event_create(
        actor=ACTOR, action="card.suspend", object_type="card", object_id=object_id, details=details
    )


def chain_locks(queries: CaptureQueriesContext) -> int:
    return sum("core_auditevent_lock_head" in q["sql"] for q in queries.captured_queries)


def test_the_events_of_a_batch_go_in_order_with_one_chain_lock():
    with transaction.atomic():
        append("before")
    with CaptureQueriesContext(connection) as seen, audit_appends_batched():
        held = append("a", n=1)
        with transaction.atomic():  # a nested service's own block
            append("b", n=2)
            with audit_appends_batched():  # nested batch: the outer one writes
                append("c", n=3)
        assert held.seq is None  # not in the chain yet
        assert AuditEvent.objects.count() == 1
    assert chain_locks(seen) == 1
    stored = list(AuditEvent.objects.order_by("seq"))
    assert [(e.seq, e.object_id, e.details) for e in stored[1:]] == [
        (2, "a", {"n": 1}),
        (3, "b", {"n": 2}),
        (4, "c", {"n": 3}),
    ]
    assert stored[1].prev_hash == stored[0].hash and audit_chain_verify().ok
    assert not connection.run_on_commit  # no marker left behind
    with transaction.atomic():
        assert append("after").seq == 5  # appends outside a batch are immediate again


def test_the_events_of_an_inner_block_rolled_back_are_dropped_with_it():
    with audit_appends_batched():
        append("kept-1")
        try:
            with transaction.atomic():
                append("dropped")
                raise RuntimeError("the inner change failed and was handled")
        except RuntimeError:
            pass
        append("kept-2")
    assert list(AuditEvent.objects.order_by("seq").values_list("object_id", flat=True)) == [
        "kept-1",
        "kept-2",
    ]
    assert audit_chain_verify().ok


def test_an_error_leaving_the_batch_writes_none_of_its_events_nor_its_changes():
    with pytest.raises(RuntimeError), audit_appends_batched():
        append("x")
        User.objects.create(username="made-in-the-batch")
        raise RuntimeError("failed")
    assert not AuditEvent.objects.exists() and not connection.run_on_commit
    assert not User.objects.filter(username="made-in-the-batch").exists()
    with transaction.atomic():
        assert append("next").seq == 1  # the batch is over: immediate appends again


def test_a_batched_event_with_a_secret_is_refused_at_once():
    with pytest.raises(DetailsError), audit_appends_batched():
        append("x", pin="1234")
    assert not AuditEvent.objects.exists()


def test_a_bulk_append_inside_a_batch_keeps_its_place_among_the_events():
    with audit_appends_batched():
        append("first")
        audit_events_create(
            [AuditEntry(ACTOR, "card.revoke", "card", f"bulk-{i}", {"i": i}) for i in range(2)]
        )
        append("last")
    assert list(AuditEvent.objects.order_by("seq").values_list("object_id", flat=True)) == [
        "first",
        "bulk-0",
        "bulk-1",
        "last",
    ]
    assert audit_chain_verify().ok


def test_a_single_event_bulk_append_is_one_plain_row():
    with transaction.atomic():
        (event,) = audit_events_create([AuditEntry(ACTOR, "card.revoke", "card", "one", {})])
    assert event.seq == 1 and AuditEvent.objects.get(seq=1).hash == event.hash
