"""PC/SC readers through pyscard: one connection is a ``cards.transport.Transport``."""

from __future__ import annotations

from typing import Any

from cpsclient.errors import ClientError

DESFIRE_ATR = bytes.fromhex("3B8180018080")  # a DESFire seen through a PC/SC contactless reader


class PcscReader:
    """A connected card in one reader; ``transmit(apdu) -> response (data ‖ SW1 SW2)``."""

    def __init__(self, reader: Any) -> None:
        self.name = str(reader)
        self._connection = reader.createConnection()
        self._connection.connect()

    @property
    def atr(self) -> bytes:
        return bytes(self._connection.getATR())

    def transmit(self, apdu: bytes) -> bytes:
        data, sw1, sw2 = self._connection.transmit(list(apdu))
        return bytes(data) + bytes((sw1, sw2))

    def close(self) -> None:
        self._connection.disconnect()


def open_reader(name: str | None, *, contactless: bool) -> PcscReader:
    """The reader whose name contains ``name``; without one, the first reader holding a card of
    the wanted interface (a DESFire ATR for contactless, any other for contact)."""
    from smartcard.Exceptions import CardConnectionException, NoCardException
    from smartcard.System import readers

    available = readers()
    for reader in available:
        if name is not None and name not in str(reader):
            continue
        try:
            connected = PcscReader(reader)
        except (NoCardException, CardConnectionException):
            continue
        if name is not None or (connected.atr == DESFIRE_ATR) == contactless:
            return connected
        connected.close()
    kind = "contactless" if contactless else "contact"
    wanted = f" named {name!r}" if name else ""
    raise ClientError(f"no {kind} card in a reader{wanted} ({len(available)} readers)")
