"""The combined mode's rules (pure code: identities as the card would give them)."""

from __future__ import annotations

import datetime as dt

import pytest

from cpsclient import denylist, session
from cpsclient.contactless import ContactlessIdentity
from cpsclient.errors import ClientError

NOW = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)
CARD = ContactlessIdentity(
    "04AABBCCDDEEFF", "810002813839", "80250000012429147637", dt.date(2032, 1, 1)
)
OTHER = ContactlessIdentity(
    "04112233445566", "810002813840", "80250000012429147638", dt.date(2032, 1, 1)
)


def _empty() -> denylist.DenyList:
    return denylist.DenyList(1, "2026-12-06T07:00:00Z", "2026-12-06T09:00:00Z")


def _bind(store, **kw):
    return session.session_bind(
        store, contact_card_number=CARD.card_number, identity=CARD, deny=_empty(),
        window=dt.timedelta(hours=1), now=NOW, **kw,
    )  # fmt: skip


def test_binding_needs_the_same_card_on_both_interfaces(tmp_path):
    with pytest.raises(ClientError, match="not the card authenticated"):
        session.session_bind(
            tmp_path, contact_card_number=OTHER.card_number, identity=CARD, deny=_empty(),
            window=dt.timedelta(hours=1), now=NOW,
        )  # fmt: skip
    assert session.session_load(tmp_path) is None


def test_taps_within_the_window_for_that_card_only(tmp_path):
    _bind(tmp_path)
    assert session.session_tap(tmp_path, identity=CARD, deny=_empty(), now=NOW)[0]
    accepted, why = session.session_tap(tmp_path, identity=OTHER, deny=_empty(), now=NOW)
    assert not accepted and "another card" in why
    assert session.session_load(tmp_path) is not None  # another card does not end it


def test_the_window_ends_the_session(tmp_path):
    _bind(tmp_path)
    later = NOW + dt.timedelta(hours=1, seconds=1)
    accepted, why = session.session_tap(tmp_path, identity=CARD, deny=_empty(), now=later)
    assert not accepted and "expired" in why
    assert session.session_load(tmp_path) is None


def test_a_denied_card_ends_the_session(tmp_path):
    _bind(tmp_path)
    deny = _empty()
    deny.entries[denylist.DenyList.key(CARD.uid, CARD.card_number)] = {
        "uid": CARD.uid, "card": CARD.card_number, "reason": "revoked",
    }  # fmt: skip
    accepted, why = session.session_tap(tmp_path, identity=CARD, deny=deny, now=NOW)
    assert not accepted and "revoked" in why
    assert session.session_load(tmp_path) is None
