"""INSERTs generated from model metadata (core.sql): every concrete column, each value prepared
by its own field, one statement."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

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
