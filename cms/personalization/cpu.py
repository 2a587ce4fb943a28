"""Server CPU per session: thread CPU time between marks, added to the session row by the writes a
round trip makes anyway (no UPDATE of its own)."""

from __future__ import annotations

import threading
import time

_CPU = threading.local()


def cpu_start() -> None:
    """Mark the start of a round trip's work in this thread."""
    _CPU.mark = time.thread_time()


def cpu_take() -> float:
    """Thread CPU (ms) spent since the last mark, which moves to now."""
    now = time.thread_time()
    mark = float(getattr(_CPU, "mark", now))
    _CPU.mark = now
    return (now - mark) * 1000
