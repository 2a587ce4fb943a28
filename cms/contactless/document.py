"""The canonical body of a deny list (full or delta), the bytes the status signer signs.

Sorted-key compact UTF-8 JSON, entries sorted: the same list always gives the same bytes.
A relying party reads it after verifying the CMS signature (``cpsclient deny-list sync``)::

    {"format": "cps-contactless-deny-list/1", "kind": "full", "version": 12,
     "issued_at": "2026-12-06T01:00:00Z", "next_update": "2026-12-06T03:00:00Z",
     "entries": [{"uid": "04A1B2C3D4E5F6", "card": "80250000010000000001", "reason": "suspended"}]}

A delta carries ``base_version`` (the version it applies to, always ``version - 1``),
``added`` (entries, new or with a new reason) and ``removed`` (``{"uid", "card"}``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass

FORMAT = "cps-contactless-deny-list/1"


@dataclass(frozen=True, slots=True, order=True)
class Entry:
    uid: str
    card: str
    reason: str = ""

    def as_json(self) -> dict[str, str]:
        return {"uid": self.uid, "card": self.card, "reason": self.reason}


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode(body: dict[str, object]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def full_body(
    *, version: int, issued_at: dt.datetime, next_update: dt.datetime, entries: Iterable[Entry]
) -> bytes:
    return _encode(
        {
            "format": FORMAT,
            "kind": "full",
            "version": version,
            "issued_at": _time(issued_at),
            "next_update": _time(next_update),
            "entries": [e.as_json() for e in sorted(entries)],
        }
    )


def delta_body(
    *,
    version: int,
    issued_at: dt.datetime,
    next_update: dt.datetime,
    added: Iterable[Entry],
    removed: Iterable[Entry],
) -> bytes:
    return _encode(
        {
            "format": FORMAT,
            "kind": "delta",
            "version": version,
            "base_version": version - 1,
            "issued_at": _time(issued_at),
            "next_update": _time(next_update),
            "added": [e.as_json() for e in sorted(added)],
            "removed": [{"uid": e.uid, "card": e.card} for e in sorted(removed)],
        }
    )
