"""INSERTs generated from model metadata (core.sql): every concrete column, each value prepared
by its own field, one statement."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction

from core.models import AuditEvent
from core.sql import row_insert

pytestmark = pytest.mark.django_db


def test_the_audit_insert_names_every_column_of_the_model():
    insert = row_insert(AuditEvent)
    columns = {f.column for f in AuditEvent._meta.concrete_fields}
    assert {f.column for f in insert.fields} == columns
    for column in columns:
        assert connection.ops.quote_name(column) in insert.sql
    assert "RETURNING" not in insert.sql


def test_a_row_written_through_the_generated_insert_reads_back_equal():
    event = AuditEvent(
        seq=1,
        occurred_at=dt.datetime(2025, 5, 4, 3, 2, 1, 123456, tzinfo=dt.UTC),
        actor_kind="user",
        actor_id="7",
        actor_label="zoé",
        action="test.sql",
        object_type="thing",
        object_id="42",
        details={"nested": {"list": [1, 2, 3]}, "text": "é"},
        prev_hash="0" * 64,
        hash="f" * 64,
    )
    insert = row_insert(AuditEvent)
    with connection.cursor() as cursor:
        cursor.execute(insert.sql, insert.params(event))
    stored = AuditEvent.objects.get(seq=1)
    for field in AuditEvent._meta.concrete_fields:
        assert getattr(stored, field.attname) == getattr(event, field.attname), field.name


def test_a_few_rows_go_in_with_one_generated_statement():
    events = [
        AuditEvent(
            seq=seq,
            occurred_at=dt.datetime(2025, 5, 4, 3, 2, seq, tzinfo=dt.UTC),
            actor_kind="system",
            actor_id="",
            actor_label="tests",
            action="test.sql_for",
            object_type="thing",
            object_id=str(seq),
            details={"n": seq},
            prev_hash="0" * 64,
            hash=f"{seq:064x}",
        )
        for seq in (11, 12, 13)
    ]
    insert = row_insert(AuditEvent)
    params = [value for event in events for value in insert.params(event)]
    with connection.cursor() as cursor:
        cursor.execute(insert.sql_for(len(events)), params)
    stored = list(AuditEvent.objects.filter(action="test.sql_for").order_by("seq"))
    assert [(e.seq, e.object_id, e.details) for e in stored] == [
        (11, "11", {"n": 11}),
        (12, "12", {"n": 12}),
        (13, "13", {"n": 13}),
    ]
    with pytest.raises(AssertionError, match="one key"):
        row_insert(AuditEvent, returning_pk=True).sql_for(2)


def test_rows_written_through_the_set_based_insert_read_back_equal():
    from core.sql import rows_insert

    events = [
        AuditEvent(
            seq=seq,
            occurred_at=dt.datetime(2025, 5, 4, 3, 2, seq, 123456, tzinfo=dt.UTC),
            actor_kind="system",
            actor_id="",
            actor_label=f"zoé {seq}",
            action="test.sql",
            object_type="thing",
            object_id=str(seq),
            details={"nested": {"list": [seq, None, "é"]}, "flag": seq % 2 == 0},
            prev_hash=f"{seq - 1:064x}",
            hash=f"{seq:064x}",
        )
        for seq in range(1, 4)
    ]
    insert = rows_insert(AuditEvent)
    assert {f.column for f in insert.fields} == {f.column for f in AuditEvent._meta.concrete_fields}
    assert "unnest(" in insert.sql and "%s::jsonb[]" in insert.sql
    with transaction.atomic():
        insert.execute(events)
        insert.execute([])  # nothing to write: no statement
    stored = list(AuditEvent.objects.order_by("seq"))
    assert len(stored) == 3
    for event, row in zip(events, stored, strict=True):
        for field in AuditEvent._meta.concrete_fields:
            assert getattr(row, field.attname) == getattr(event, field.attname), field.name
