"""PC/SC through pyscard: the only module of the station that imports it.

A dual-interface card shows as two readers (contact and contactless); with vsmartcard-vpcd they
are ``Virtual PCD 00 00`` and ``Virtual PCD 00 01``. ``contactless_sibling`` pairs them by name.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from typing import Any

from smartcard.Exceptions import CardConnectionException, NoCardException
from smartcard.System import readers as _readers

from cards.errors import TransportError
from personalization_station.relay import CardLink

SCARD_W_RESET_CARD = 0x80100068
SCARD_W_REMOVED_CARD = 0x80100069


def reader_names() -> list[str]:
    """Names of the readers pcscd knows."""
    return [str(r) for r in _readers()]


def contactless_sibling(contact: str, names: list[str]) -> str | None:
    """``… 00 00`` → ``… 00 01`` when that reader exists (vpcd's second slot)."""
    if contact.endswith(" 00"):
        candidate = contact[:-2] + "01"
        if candidate in names:
            return candidate
    return None


class PcscTransport:
    """One pyscard connection; ``transmit(bytes) -> bytes``; TransportError when the card left."""

    def __init__(self, reader: str) -> None:
        self.reader = reader
        self._conn: Any = None

    def connect(self) -> bytes:
        """Connect and return the ATR; TransportError if there is no card."""
        reader = next((r for r in _readers() if str(r) == self.reader), None)
        if reader is None:
            raise TransportError(f"no reader {self.reader!r}")
        conn = reader.createConnection()
        try:
            conn.connect()
        except (NoCardException, CardConnectionException) as exc:
            raise TransportError(f"no card in {self.reader}: {exc}") from None
        self._conn = conn
        return bytes(conn.getATR())

    def transmit(self, apdu: bytes) -> bytes:
        """Send one APDU."""
        if self._conn is None:
            raise TransportError(f"{self.reader}: not connected")
        try:
            data, sw1, sw2 = self._conn.transmit(list(apdu))
        except CardConnectionException as exc:
            if getattr(exc, "hresult", None) != SCARD_W_RESET_CARD:
                raise TransportError(f"{self.reader}: {exc}") from None
            # pcscd powered a newly seen card up on its own: the handle answers "reset" once.
            try:
                self._conn.disconnect()
                self._conn.connect()
                data, sw1, sw2 = self._conn.transmit(list(apdu))
            except CardConnectionException as again:
                raise TransportError(f"{self.reader}: {again}") from None
        return bytes(data) + bytes([sw1, sw2])

    def close(self) -> None:
        """Disconnect (the card stays powered by pcscd)."""
        if self._conn is not None:
            with contextlib.suppress(CardConnectionException):
                self._conn.disconnect()
            self._conn = None


def card_present(reader: str) -> bool:
    """Whether a card answers in ``reader`` now."""
    probe = PcscTransport(reader)
    try:
        probe.connect()
    except TransportError:
        return False
    probe.close()
    return True


# pcscd may report a dual-interface card in the contact reader before the contactless one: the
# station waits this long for the second interface before it goes on (and claims) without it.
DUAL_INTERFACE_WAIT = 3.0
# ... and, when a batch then needs the contactless interface, this long again before the step
# fails (a loaded host: otherwise the session is interrupted at its first batch and the station
# waits for a removal no one makes).
LATE_INTERFACE_WAIT = 15.0


def wait_for_card(
    reader: str,
    *,
    timeout: float | None = None,
    poll: float = 0.25,
    dual_wait: float = DUAL_INTERFACE_WAIT,
    late_wait: float = LATE_INTERFACE_WAIT,
) -> CardLink:
    """Block until a card is in ``reader``; a link with its ATR and both interfaces (the
    contactless one waited for up to ``dual_wait`` seconds when the reader has a sibling, and up
    to ``late_wait`` more when a batch first needs it)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        contact = PcscTransport(reader)
        try:
            atr = contact.connect()
            # A fresh handle may see "card reset" on its first command: absorb it here.
            contact.transmit(bytes.fromhex("00A4000C023F00"))
            break
        except TransportError:
            contact.close()
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"no card in {reader}")
        time.sleep(poll)
    contactless: PcscTransport | None = None
    late: Callable[[], PcscTransport | None] | None = None
    sibling = contactless_sibling(reader, reader_names())
    if sibling is not None:
        contactless = _connect_within(sibling, dual_wait, poll)
        if contactless is None:
            late = functools.partial(_connect_within, sibling, late_wait, poll)
    return CardLink(
        atr=atr, contact=contact, contactless=contactless, reader=reader, late_contactless=late
    )


def _connect_within(reader: str, seconds: float, poll: float) -> PcscTransport | None:
    """A connection to the card in ``reader`` once it shows there, or None after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        transport = PcscTransport(reader)
        try:
            transport.connect()
            return transport
        except TransportError:
            transport.close()
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll)


def wait_for_removal(reader: str, *, poll: float = 0.25) -> None:
    """Block until the reader is empty."""
    while card_present(reader):
        time.sleep(poll)


def close(link: CardLink) -> None:
    """Disconnect both interfaces of a link made by ``wait_for_card``."""
    for transport in (link.contact, link.contactless):
        if isinstance(transport, PcscTransport):
            transport.close()
