"""The live generators of running sessions, held in this process between round trips.

A session's program (``cards.programs.cps4``) is a generator; the web process keeps it in memory
from one round trip to the next, with the batch in flight and the last answer sent (a station that
lost it asks again). A process that does not hold a session's generator (restart, another replica)
resumes it from the stored checkpoint (``cms.personalization.session``); forgetting one is always
safe.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from uuid import UUID

from cards.programs.base import Batch, Checkpoint, Program
from cards.programs.cps4 import Cps4Inputs
from cards.station_protocol import Running


@dataclass
class Live:
    """One session's generator and what the next round trip needs of it."""

    program: Program
    mode: str
    inputs: Cps4Inputs
    seq: int = 0
    batch: Batch | None = None
    last_payload: Running | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Written with the next session UPDATE (one per round trip, see ``session._flush``).
    pending: list[Checkpoint] = field(default_factory=list)
    apdus: int = 0


_LIVE: dict[UUID, Live] = {}
_LIVE_LOCK = threading.Lock()


def live_get(session_id: UUID) -> Live | None:
    with _LIVE_LOCK:
        return _LIVE.get(session_id)


def live_put(session_id: UUID, live: Live) -> None:
    """Hold ``live`` for the session, closing the generator it replaces."""
    with _LIVE_LOCK:
        old = _LIVE.pop(session_id, None)
        _LIVE[session_id] = live
    if old is not None:
        old.program.close()


def session_forget(session_id: UUID) -> None:
    """Drop the in-memory generator of a session (ended or interrupted)."""
    with _LIVE_LOCK:
        live = _LIVE.pop(session_id, None)
    if live is not None:
        live.program.close()
