"""The audit chain's canonical encoding and hash: pure functions, shared by append and verify."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64

# Keys that would mean a secret is being written into the audit log. Refused outright.
FORBIDDEN_DETAIL_KEYS = frozenset(
    {"pin", "puk", "password", "passphrase", "secret", "private_key", "key_material", "token"}
)


class DetailsError(ValueError):
    """Audit details that cannot be hashed reproducibly or that look like a secret."""


def _plain(value: Any) -> bool:
    """Whether ``value`` is surely acceptable: JSON scalars, lists, tuples and dicts with string
    keys none of them forbidden. Checked without building the error paths that
    :func:`check_details` names (its cost on every event); anything else goes the long way."""
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or key.lower() in FORBIDDEN_DETAIL_KEYS:
                return False
            if not _plain(item):
                return False
        return True
    if isinstance(value, list | tuple):
        return all(_plain(item) for item in value)
    return False


def check_details(value: Any, path: str = "details") -> None:
    """Accept only JSON-native values whose encoding survives a database round trip."""
    if _plain(value):
        return
    if isinstance(value, float):
        raise DetailsError(f"{path}: floats are not allowed (their encoding is not stable)")
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_details(item, f"{path}[{index}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise DetailsError(f"{path}: keys must be strings, got {type(key).__name__}")
            if key.lower() in FORBIDDEN_DETAIL_KEYS:
                raise DetailsError(f"{path}.{key}: secrets never go into the audit log")
            check_details(item, f"{path}.{key}")
        return
    raise DetailsError(f"{path}: {type(value).__name__} is not a JSON value")


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise DetailsError("audit times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_bytes(
    *,
    seq: int,
    occurred_at: datetime,
    actor_kind: str,
    actor_id: str,
    actor_label: str,
    action: str,
    object_type: str,
    object_id: str,
    details: Mapping[str, Any],
    prev_hash: str,
) -> bytes:
    """UTF-8 JSON with sorted keys and no whitespace: the bytes the event hash covers."""
    document = {
        "seq": seq,
        "occurred_at": format_time(occurred_at),
        "actor": {"kind": actor_kind, "id": actor_id, "label": actor_label},
        "action": action,
        "object": {"type": object_type, "id": object_id},
        "details": details,
        "prev_hash": prev_hash,
    }
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def event_hash(**fields: Any) -> str:
    return hashlib.sha256(canonical_bytes(**fields)).hexdigest()
