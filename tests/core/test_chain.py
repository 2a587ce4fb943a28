"""The canonical encoding and detail checks, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.chain import GENESIS_HASH, DetailsError, canonical_bytes, check_details, event_hash

FIELDS = {
    "seq": 1,
    "occurred_at": datetime(2026, 11, 29, 10, 0, 0, 123456, tzinfo=UTC),
    "actor_kind": "user",
    "actor_id": "7",
    "actor_label": "alice",
    "action": "card.suspend",
    "object_type": "card",
    "object_id": "80250000010000000001",
    "details": {"reason": "holder request", "nested": {"b": 1, "a": [True, None]}},
    "prev_hash": GENESIS_HASH,
}


def test_canonical_encoding_is_sorted_compact_utf8():
    encoded = canonical_bytes(**{**FIELDS, "actor_label": "éloïse"})
    assert b" " not in encoded.replace(b"holder request", b"")
    assert "éloïse".encode() in encoded
    assert encoded.index(b'"action"') < encoded.index(b'"actor"') < encoded.index(b'"details"')


def test_hash_ignores_key_order_and_time_zone_of_the_same_instant():
    reordered = {
        **FIELDS,
        "details": {"nested": {"a": [True, None], "b": 1}, "reason": "holder request"},
    }
    paris = FIELDS["occurred_at"].astimezone(timezone(timedelta(hours=1)))
    assert event_hash(**reordered) == event_hash(**FIELDS)
    assert event_hash(**{**FIELDS, "occurred_at": paris}) == event_hash(**FIELDS)


@pytest.mark.parametrize(
    "field,value",
    [
        ("seq", 2),
        ("action", "card.revoke"),
        ("details", {"reason": "other"}),
        ("prev_hash", "1" * 64),
    ],
)
def test_every_field_is_covered_by_the_hash(field, value):
    assert event_hash(**{**FIELDS, field: value}) != event_hash(**FIELDS)


@pytest.mark.parametrize(
    "details,fragment",
    [
        ({"ratio": 0.5}, "floats"),
        ({"pin": "1234"}, "secrets"),
        ({"nested": {"PUK": "12345678"}}, "secrets"),
        ({1: "x"}, "keys must be strings"),
        ({"when": datetime(2026, 1, 1, tzinfo=UTC)}, "not a JSON value"),
        # Deep in lists and mappings, the error still names where (the plain check declines).
        ({"items": [{"ok": 1}, {"Secret": "x"}]}, r"^details\.items\[1\]\.Secret: secrets"),
        (
            {"steps": ({"ok": [1, None, True]}, {"ratio": [0.5]})},
            r"^details\.steps\[1\]\.ratio\[0\]: floats",
        ),
    ],
)
def test_details_that_cannot_be_hashed_reproducibly_or_hold_secrets_are_refused(details, fragment):
    with pytest.raises(DetailsError, match=fragment):
        check_details(details)


def test_naive_times_are_refused():
    with pytest.raises(DetailsError, match="timezone-aware"):
        canonical_bytes(**{**FIELDS, "occurred_at": datetime(2026, 1, 1)})
