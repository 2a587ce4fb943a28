"""Appending to and verifying the audit chain."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import QuerySet
from django.utils import timezone

from core.actors import Actor
from core.chain import GENESIS_HASH, check_details, event_hash
from core.models import AuditEvent
from core.sql import row_insert, rows_insert

# Arbitrary constant: the PostgreSQL advisory lock that serialises appends to the single chain.
_CHAIN_LOCK_KEY = 0x43505341  # "CPSA"


def _lock_chain_and_read_head(cursor: CursorWrapper) -> tuple[int, str] | None:
    """Serialise appends to the single chain and return its head (seq, hash), if any."""
    # One round trip: the function takes the advisory lock, then reads with a fresh snapshot.
    cursor.execute("SELECT * FROM core_auditevent_lock_head(%s)", [_CHAIN_LOCK_KEY])
    row = cursor.fetchone()
    return (int(row[0]), str(row[1])) if row else None


def audit_event_create(
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. Must run inside the transaction of the change it records."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_event_create must run inside the transaction of its change")
    payload = dict(details or {})
    check_details(payload)
    batch: _Batch | None = getattr(_batching, "batch", None)
    if batch is not None:
        return batch.hold(AuditEntry(actor, action, object_type, str(object_id), payload))
    return _event_insert(actor, action, object_type, object_id, payload)


def _event_insert(
    actor: Actor, action: str, object_type: str, object_id: str, payload: dict[str, Any]
) -> AuditEvent:
    """Append one event whose ``payload`` is already checked (and the caller's own copy)."""
    # Raw SQL: this runs inside every state change of the system, so it stays at two round trips.
    with connection.cursor() as cursor:
        last = _lock_chain_and_read_head(cursor)
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        fields: dict[str, Any] = {
            "seq": seq,
            "occurred_at": timezone.now(),
            "actor_kind": actor.kind,
            "actor_id": actor.id,
            "actor_label": actor.label,
            "action": action,
            "object_type": object_type,
            "object_id": str(object_id),
            "details": payload,
            "prev_hash": prev_hash,
        }
        event = AuditEvent(hash=event_hash(**fields), **fields)
        insert = row_insert(AuditEvent)
        cursor.execute(insert.sql, insert.params(event))
    event._state.adding = False
    event._state.db = connection.alias
    return event


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One event for :func:`audit_events_create` (the arguments of :func:`audit_event_create`)."""

    actor: Actor
    action: str
    object_type: str
    object_id: str
    details: Mapping[str, Any]


def audit_events_create(entries: Sequence[AuditEntry]) -> list[AuditEvent]:
    """Append several events, in order, with one chain extension: the chain is locked and its
    head read once, then each event is hashed onto the one before it (each still its own row and
    link, exactly as :func:`audit_event_create` would have written them one by one) and the rows
    go in with one set-based INSERT. Must run inside the transaction of the changes they record."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_events_create must run inside the transaction of its changes")
    if not entries:
        return []
    payloads = []
    for entry in entries:
        payload = dict(entry.details)
        check_details(payload)
        payloads.append(payload)
    batch: _Batch | None = getattr(_batching, "batch", None)
    if batch is not None:  # held with the batch's other events, in call order
        return [
            batch.hold(AuditEntry(e.actor, e.action, e.object_type, str(e.object_id), payload))
            for e, payload in zip(entries, payloads, strict=True)
        ]
    if len(entries) == 1:  # one row: the plain INSERT costs less than the set-based one
        entry = entries[0]
        return [
            _event_insert(
                entry.actor, entry.action, entry.object_type, str(entry.object_id), payloads[0]
            )
        ]
    events: list[AuditEvent] = []
    with connection.cursor() as cursor:
        last = _lock_chain_and_read_head(cursor)
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        now = timezone.now()
        for entry, payload in zip(entries, payloads, strict=True):
            fields: dict[str, Any] = {
                "seq": seq,
                "occurred_at": now,
                "actor_kind": entry.actor.kind,
                "actor_id": entry.actor.id,
                "actor_label": entry.actor.label,
                "action": entry.action,
                "object_type": entry.object_type,
                "object_id": str(entry.object_id),
                "details": payload,
                "prev_hash": prev_hash,
            }
            event = AuditEvent(hash=event_hash(**fields), **fields)
            event._state.adding = False
            event._state.db = connection.alias
            events.append(event)
            seq, prev_hash = seq + 1, event.hash
    rows_insert(AuditEvent).execute(events)
    return events


_batching = threading.local()


@dataclass
class _Batch:
    """Events held by :func:`audit_appends_batched`, each with the marker that tells whether the
    (inner) atomic block it was appended in was rolled back."""

    held: list[tuple[AuditEntry, Callable[[], None]]] = field(default_factory=list)

    def hold(self, entry: AuditEntry) -> AuditEvent:
        def marker() -> None:
            """Never run: taken out of the commit hooks at the batch's end."""

        # Django drops the commit hooks of a savepoint rolled back: the marker goes with it.
        transaction.on_commit(marker)
        self.held.append((entry, marker))
        return AuditEvent(  # not in the chain yet: no seq and no hashes until the batch ends
            actor_kind=entry.actor.kind,
            actor_id=entry.actor.id,
            actor_label=entry.actor.label,
            action=entry.action,
            object_type=entry.object_type,
            object_id=entry.object_id,
            details=dict(entry.details),
        )

    def kept(self) -> list[AuditEntry]:
        """The entries whose atomic blocks were not rolled back; the markers removed."""
        markers = {id(marker) for _, marker in self.held}
        alive = {id(hook[1]) for hook in connection.run_on_commit if id(hook[1]) in markers}
        connection.run_on_commit = [
            hook for hook in connection.run_on_commit if id(hook[1]) not in markers
        ]
        return [entry for entry, marker in self.held if id(marker) in alive]


@contextmanager
def audit_appends_batched() -> Iterator[None]:
    """An atomic block whose :func:`audit_event_create` calls (the services it calls, nested)
    are appended together when it ends, in order, with one chain extension
    (:func:`audit_events_create`: one lock and head read instead of one per event) in the same
    transaction; the chain's lock is taken at the end rather than at the first event. Events of
    an inner atomic block rolled back are dropped with it; an error leaving the block rolls
    back its changes and writes none of its events. Nested: the outer batch writes them all.
    The events returned inside are not in the chain yet (no ``seq``)."""
    if getattr(_batching, "batch", None) is not None:
        with transaction.atomic():
            yield
        return
    with transaction.atomic():
        batch = _batching.batch = _Batch()
        try:
            yield
        except BaseException:
            _batching.batch = None
            batch.kept()  # the markers out of the commit hooks
            raise
        _batching.batch = None
        audit_events_create(batch.kept())


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"audit chain broken at event #{self.seq}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    checked: int
    head_seq: int
    head_hash: str
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


def _events_in_order(chunk_size: int) -> Iterator[AuditEvent]:
    return AuditEvent.objects.order_by("seq").iterator(chunk_size=chunk_size)


def audit_chain_verify(*, chunk_size: int = 5000) -> ChainReport:
    """Walk the chain from the first event and report the first broken or missing link."""
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    with transaction.atomic():  # one snapshot, so concurrent appends do not look like breaks
        for event in _events_in_order(chunk_size):
            checked += 1
            if event.seq != expected_seq:
                missing = (
                    f"#{expected_seq}"
                    if event.seq == expected_seq + 1
                    else f"#{expected_seq} to #{event.seq - 1}"
                )
                return ChainReport(
                    checked,
                    event.seq,
                    event.hash,
                    ChainBreak(expected_seq, f"missing link: event {missing} is absent"),
                )
            recomputed = event_hash(
                seq=event.seq,
                occurred_at=event.occurred_at,
                actor_kind=event.actor_kind,
                actor_id=event.actor_id,
                actor_label=event.actor_label,
                action=event.action,
                object_type=event.object_type,
                object_id=event.object_id,
                details=event.details,
                prev_hash=event.prev_hash,
            )
            if recomputed != event.hash:
                return ChainReport(
                    checked,
                    event.seq,
                    event.hash,
                    ChainBreak(event.seq, "content does not match its hash (edited or forged)"),
                )
            if event.prev_hash != prev_hash:
                return ChainReport(
                    checked,
                    event.seq,
                    event.hash,
                    ChainBreak(
                        event.seq,
                        "does not chain to the event before it (rows reordered, replaced "
                        "or rewritten)",
                    ),
                )
            expected_seq, prev_hash = event.seq + 1, event.hash
    return ChainReport(checked, expected_seq - 1, prev_hash, None)


def audit_event_list(*, before_seq: int | None = None) -> QuerySet[AuditEvent]:
    """Events newest first (only those older than ``before_seq`` if given: keyset pages);
    the FilterSet of the API and the console narrows them."""
    events = AuditEvent.objects.order_by("-seq")
    if before_seq is not None:
        events = events.filter(seq__lt=before_seq)
    return events


def audit_event_count() -> int:
    """How many events the chain holds, without a COUNT(*) of a growing table: the chain numbers
    its events without gaps, so the head's number is their count."""
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    return head or 0
