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


def test_a_nullable_foreign_key_is_read_by_an_outer_join():
    act = _act()
    read = joined_read(DualControlAct, ("requested_by", "decided_by"))
    assert " LEFT OUTER JOIN " in read.sql
    found = read.get(act.pk)
    assert isinstance(found, DualControlAct)
    with CaptureQueriesContext(connection) as seen:
        assert found.decided_by is None  # cached as None: not looked up
    assert not seen.captured_queries
    decider = User.objects.create_user(username="yves", password=None)
    DualControlAct.objects.filter(pk=act.pk).update(decided_by=decider)
    found = read.get(act.pk)
    assert isinstance(found, DualControlAct)
    with CaptureQueriesContext(connection) as seen:
        assert found.decided_by is not None and found.decided_by.username == "yves"
    assert not seen.captured_queries


def test_a_read_locked_of_self_locks_only_its_row():
    act = _act()
    read = joined_read(
        DualControlAct, ("requested_by", "decided_by"), for_update=True, of_self=True
    )
    assert read.sql.endswith(' FOR UPDATE OF "t0"')
    with transaction.atomic():  # PostgreSQL refuses to lock the nullable side of an outer join
        found = read.get(act.pk)
    assert isinstance(found, DualControlAct) and found.pk == act.pk
    with pytest.raises(AssertionError, match="of_self"):
        joined_read(DualControlAct, ("decided_by",), for_update=True)


def test_a_read_by_another_unique_field_gives_what_get_gives():
    act = _act()
    read = joined_read(User, (), key="username")
    found = read.get("zoé")
    assert isinstance(found, User) and found.pk == act.requested_by_id
    assert found.first_name == "Zoé"
    assert read.get("nobody") is None
    with pytest.raises(AssertionError, match="unique"):
        joined_read(User, (), key="first_name")
