"""The live generators of running sessions, held in this process between round trips.

A session's program (``cards.programs``) is a generator; the web process keeps it in memory from
one round trip to the next, with the batch in flight and the last answer sent (a station that lost
it asks again). A process that does not hold a session's generator (restart, another replica)
resumes it from the stored state (a checkpoint, or the start of an idempotent program); forgetting
one is always safe.

The three server-driven programs (issuance ``session``, new codes ``codes``, renewal on the card
``renewal``) share this machinery: a ``LiveProgram`` per session in a ``LiveRegistry``, and
``batch_received`` for the station's answers to the batch in flight.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from uuid import UUID

from cards.programs.base import Batch, Checkpoint, Program
from cards.programs.cps4 import Cps4Inputs
from cards.station_protocol import ProtocolError, Running, responses_read
from core.errors import BadInput, Conflict


@dataclass
class LiveProgram:
    """One session's generator and the state of its round trips."""

    program: Program
    seq: int = 0
    batch: Batch | None = None
    last_payload: Running | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(kw_only=True)
class Live(LiveProgram):
    """An issuance session's generator, with what its checkpoints need."""

    mode: str
    inputs: Cps4Inputs
    # Written with the next session UPDATE (one per round trip, see ``session._flush``).
    pending: list[Checkpoint] = field(default_factory=list)
    apdus: int = 0


L = TypeVar("L", bound=LiveProgram)


class LiveRegistry(Generic[L]):
    """The live programs of one kind of session in this process, by session id."""

    def __init__(self) -> None:
        self.entries: dict[UUID, L] = {}
        self._lock = threading.Lock()

    def get(self, session_id: UUID) -> L | None:
        with self._lock:
            return self.entries.get(session_id)

    def holds(self, session_id: UUID) -> bool:
        with self._lock:
            return session_id in self.entries

    def put(self, session_id: UUID, live: L) -> None:
        """Hold ``live`` for the session, closing the generator it replaces."""
        with self._lock:
            old = self.entries.pop(session_id, None)
            self.entries[session_id] = live
        if old is not None:
            old.program.close()

    def forget(self, session_id: UUID) -> None:
        """Drop the in-memory generator of a session (ended or interrupted)."""
        with self._lock:
            live = self.entries.pop(session_id, None)
        if live is not None:
            live.program.close()


def batch_received(live: LiveProgram, seq: int, responses: object) -> Running | tuple[bytes, ...]:
    """The station's answers to batch ``seq`` (the caller holds ``live.lock``).

    The last answer again when the station repeats the previous batch (it lost our answer);
    ``Conflict`` when ``seq`` is not the batch in flight; ``BadInput`` when the answers do not
    read; else the responses, one per step of the batch.
    """
    if seq == live.seq - 1 and live.last_payload is not None:
        return live.last_payload  # the station lost our answer and sent its batch again
    if seq != live.seq or live.batch is None:
        raise Conflict(
            f"Batch {seq} is not the batch in flight ({live.seq}).",
            extra={"expected_seq": live.seq},
        )
    try:
        return responses_read(responses, len(live.batch.steps))
    except ProtocolError as exc:
        raise BadInput(str(exc)) from None


_SESSIONS: LiveRegistry[Live] = LiveRegistry()
_LIVE = _SESSIONS.entries  # the issuance registry's table (tests swap processes through it)


def live_get(session_id: UUID) -> Live | None:
    return _SESSIONS.get(session_id)


def live_put(session_id: UUID, live: Live) -> None:
    """Hold ``live`` for the session, closing the generator it replaces."""
    _SESSIONS.put(session_id, live)


def session_forget(session_id: UUID) -> None:
    """Drop the in-memory generator of an issuance session (ended or interrupted)."""
    _SESSIONS.forget(session_id)
