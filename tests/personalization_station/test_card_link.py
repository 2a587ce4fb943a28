"""A contactless interface pcscd reports after the station's wait at insertion is connected when a
batch first needs it, once; a card that has none fails that step as before."""

from __future__ import annotations

import pytest

from cards.errors import TransportError
from personalization_station.relay import CardLink


class _Transport:
    def __init__(self, name: str) -> None:
        self.name = name

    def transmit(self, apdu: bytes) -> bytes:
        return bytes.fromhex("9000")


def test_the_late_interface_is_connected_when_a_step_needs_it() -> None:
    calls: list[str] = []
    late = _Transport("contactless")

    def connect() -> _Transport:
        calls.append("connect")
        return late

    contact = _Transport("contact")
    link = CardLink(atr=b"", contact=contact, late_contactless=connect)
    assert link.transport("contact") is contact
    assert calls == []  # nothing waited for while only the contact chip is used
    assert link.transport("contactless") is late
    assert link.transport("contactless") is late
    assert calls == ["connect"]
    assert link.contactless is late  # closed with the link's other transports


def test_an_interface_that_never_shows_is_waited_for_once() -> None:
    calls: list[str] = []

    def connect() -> None:
        calls.append("connect")

    link = CardLink(atr=b"", contact=_Transport("contact"), late_contactless=connect)
    for _ in range(2):
        with pytest.raises(TransportError, match="no contactless reader"):
            link.transport("contactless")
    assert calls == ["connect"]


def test_without_a_sibling_reader_nothing_is_waited_for() -> None:
    link = CardLink(atr=b"", contact=_Transport("contact"))
    with pytest.raises(TransportError, match="no contactless reader"):
        link.transport("contactless")
