"""Audit append, the append-only trigger, and detection of every kind of tampering (PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from core.actors import Actor
from core.audit import audit_chain_verify, audit_event_create
from core.chain import GENESIS_HASH
from core.models import AuditEvent

pytestmark = pytest.mark.django_db

ACTOR = Actor(kind="user", id="1", label="alice")


def append(n: int, start: int = 0) -> list[AuditEvent]:
    events = []
    for i in range(start, start + n):
        with transaction.atomic():
            events.append(
                audit_event_create(
                    actor=ACTOR,
                    action="card.suspend",
                    object_type="card",
                    object_id=f"card-{i}",
                    details={"i": i, "reason": "test"},
                )
            )
    return events


@contextmanager
def tamper() -> Iterator[object]:
    """Let the test rewrite history, as an attacker with table-owner rights would."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE core_auditevent DISABLE TRIGGER USER")
        try:
            yield cursor
        finally:
            cursor.execute("ALTER TABLE core_auditevent ENABLE TRIGGER USER")


def test_events_chain_from_genesis_with_consecutive_numbers():
    first, second, third = append(3)
    assert (first.seq, second.seq, third.seq) == (1, 2, 3)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    report = audit_chain_verify()
    assert report.ok and report.checked == 3 and report.head_hash == third.hash


@pytest.mark.django_db(transaction=True)
def test_append_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_event_create(actor=ACTOR, action="x", object_type="y", object_id="z")


def test_event_rolled_back_with_its_change_leaves_no_gap():
    append(1)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        audit_event_create(actor=ACTOR, action="x", object_type="y", object_id="z")
        1 / 0  # noqa: B018 - the change fails after its event was written
    append(1, start=1)
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == [1, 2]
    assert audit_chain_verify().ok


@pytest.mark.parametrize(
    "statement", ["UPDATE core_auditevent SET action = 'x'", "DELETE FROM core_auditevent"]
)
def test_database_refuses_update_and_delete(statement):
    append(2)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert AuditEvent.objects.count() == 2


def test_edited_detail_is_found_at_its_sequence_number():
    append(5)
    with tamper() as cursor:
        cursor.execute(
            "UPDATE core_auditevent SET details = jsonb_set(details, '{reason}', '\"edited\"') WHERE seq = 3"
        )
    brk = audit_chain_verify().first_break
    assert brk is not None and brk.seq == 3 and "edited or forged" in brk.reason


def test_deleted_row_is_reported_as_a_missing_link():
    append(5)
    with tamper() as cursor:
        cursor.execute("DELETE FROM core_auditevent WHERE seq = 4")
    brk = audit_chain_verify().first_break
    assert brk is not None and brk.seq == 4 and "missing link" in brk.reason


def test_deleted_tail_is_caught_by_the_recorded_head():
    events = append(4)
    head = f"{events[-1].seq}:{events[-1].hash}"
    with tamper() as cursor:
        cursor.execute("DELETE FROM core_auditevent WHERE seq = 4")
    assert audit_chain_verify().ok  # a truncated tail is a valid shorter chain ...
    with pytest.raises(CommandError, match="#4") as caught:
        call_command("audit_verify", expect_head=head)  # ... until compared with the anchor
    assert caught.value.returncode == 1


def test_reordered_rows_are_detected():
    append(5)
    with tamper() as cursor:
        cursor.execute("UPDATE core_auditevent SET seq = seq + 1000 WHERE seq IN (2, 3)")
        cursor.execute(
            "UPDATE core_auditevent SET seq = CASE seq WHEN 1002 THEN 3 ELSE 2 END WHERE seq > 1000"
        )
    brk = audit_chain_verify().first_break
    assert brk is not None and brk.seq == 2


def test_forged_hash_is_detected():
    append(5)
    with tamper() as cursor:
        cursor.execute("UPDATE core_auditevent SET hash = repeat('a', 64) WHERE seq = 2")
    brk = audit_chain_verify().first_break
    assert brk is not None and brk.seq == 2


def test_rehashed_edit_breaks_the_next_link():
    """An attacker who edits a row and recomputes its own hash is caught by the next event."""
    from core.chain import event_hash

    append(4)
    event = AuditEvent.objects.get(seq=2)
    fields = {
        f: getattr(event, f)
        for f in (
            "seq",
            "occurred_at",
            "actor_kind",
            "actor_id",
            "actor_label",
            "action",
            "object_type",
            "object_id",
            "prev_hash",
        )
    }
    fields["details"] = {"i": 1, "reason": "rewritten"}
    with tamper() as cursor:
        cursor.execute(
            "UPDATE core_auditevent SET details = %s::jsonb, hash = %s WHERE seq = 2",
            ['{"i": 1, "reason": "rewritten"}', event_hash(**fields)],
        )
    brk = audit_chain_verify().first_break
    assert brk is not None and brk.seq == 3 and "does not chain" in brk.reason


def test_audit_verify_command_exit_status(capsys):
    events = append(3)
    call_command("audit_verify")
    assert f"head 3:{events[-1].hash}" in capsys.readouterr().out
    with tamper() as cursor:
        cursor.execute("UPDATE core_auditevent SET actor_label = 'mallory' WHERE seq = 2")
    with pytest.raises(CommandError, match="broken at event #2") as caught:
        call_command("audit_verify")
    assert caught.value.returncode == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_keep_one_unbroken_chain():
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            append(10, start=offset * 100)
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    report = audit_chain_verify()
    assert report.ok and report.checked == 40


def test_audit_check_delivered_twice_records_its_outcome_once():
    from core.tasks import audit_chain_check

    first = audit_chain_check(task_id="4b1c7e0a-redelivered")
    again = audit_chain_check(task_id="4b1c7e0a-redelivered")
    other = audit_chain_check(task_id="another-task")
    assert first is not None and first["task"] == "4b1c7e0a-redelivered"
    assert again is None
    assert other is not None
    recorded = AuditEvent.objects.filter(action="audit.verify").values_list("details", flat=True)
    assert sorted(d["task"] for d in recorded) == ["4b1c7e0a-redelivered", "another-task"]
