"""Reads and updates built once from model metadata (core.rows): what they give and write is what
the ORM gives and writes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core.models import DualControlAct
from core.rows import joined_read, row_update

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=dt.UTC)


def _act() -> DualControlAct:
    user = User.objects.create_user(username="zoé", first_name="Zoé", password=None)
    return DualControlAct.objects.create(
        kind="test.rows",
        params={"nested": {"list": [1, 2, 3]}, "text": "é"},
        summary="a summary",
        reason="a reason",
        requested_by=user,
        requested_at=NOW,
        expires_at=NOW + dt.timedelta(hours=1),
    )


def test_a_joined_read_gives_what_select_related_gives():
    act = _act()
    expected = DualControlAct.objects.select_related("requested_by").get(pk=act.pk)
    read = joined_read(DualControlAct, ("requested_by",))
    found = read.get(act.pk)
    assert isinstance(found, DualControlAct)
    for field in DualControlAct._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
    assert found.params == {"nested": {"list": [1, 2, 3]}, "text": "é"}  # JSON decoded
    assert not found._state.adding
    assert found._state.db == "default"
    with CaptureQueriesContext(connection) as seen:
        user = found.requested_by  # cached on the instance, as select_related leaves it
    assert not seen.captured_queries
    for field in User._meta.concrete_fields:
        assert getattr(user, field.attname) == getattr(expected.requested_by, field.attname)
    assert read.get(act.pk + 1000) is None
    assert "FOR UPDATE" not in read.sql


def test_a_locking_read_locks_the_rows():
    act = _act()
    read = joined_read(DualControlAct, ("requested_by",), for_update=True)
    assert read.sql.endswith(" FOR UPDATE")
    with transaction.atomic():
        found = read.get(act.pk)
    assert isinstance(found, DualControlAct) and found.pk == act.pk


def test_a_row_update_writes_what_update_writes():
    act = _act()
    update = row_update(DualControlAct, ("status", "result", "decided_at"))
    written = update.execute(act.pk, [DualControlAct.Status.EXECUTED, {"done": ["é", 1]}, NOW], [])
    assert written == 1
    stored = DualControlAct.objects.get(pk=act.pk)
    assert stored.status == "executed"
    assert stored.result == {"done": ["é", 1]}
    assert stored.decided_at == NOW
    assert stored.params == act.params  # the rest untouched
    assert update.execute(act.pk + 1000, ["refused", {}, NOW]) == 0


def test_a_nullable_key_is_outer_joined_and_only_the_root_row_locked():
    act = _act()
    read = joined_read(
        DualControlAct, ("requested_by", "decided_by"), for_update=True, lock_root_only=True
    )
    assert read.sql.endswith(' FOR UPDATE OF "t0"')
    assert "LEFT OUTER JOIN" in read.sql
    with transaction.atomic():
        found = read.get(act.pk)
    assert isinstance(found, DualControlAct)
    with CaptureQueriesContext(connection) as seen:
        assert found.decided_by is None  # cached as pointing nowhere, as select_related leaves it
        assert found.requested_by.username == "zoé"
    assert not seen.captured_queries
    decider = User.objects.create_user(username="yves", password=None)
    DualControlAct.objects.filter(pk=act.pk).update(decided_by=decider)
    again = read.get(act.pk)
    assert isinstance(again, DualControlAct)
    assert again.decided_by is not None and again.decided_by.username == "yves"
