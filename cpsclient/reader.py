"""Reader selection and a pyscard transport (``transmit(bytes) -> bytes``)."""

from __future__ import annotations

import contextlib
from typing import Any

from cards.errors import TransportError


def reader_names() -> list[str]:
    """The readers pcscd knows (empty when pcscd is not running)."""
    from smartcard.System import readers

    try:
        return [str(r) for r in readers()]
    except Exception:  # pcscd down: pyscard raises its own establish-context error
        return []


def pick_reader(wanted: str | None) -> str:
    """``wanted`` exactly, or the only reader whose name contains it, or the first reader."""
    names = reader_names()
    if not names:
        raise TransportError("no smart card reader (is pcscd running?)")
    if wanted is None:
        return names[0]
    if wanted in names:
        return wanted
    matches = [n for n in names if wanted.lower() in n.lower()]
    if len(matches) == 1:
        return matches[0]
    raise TransportError(f"no single reader matches {wanted!r}; readers: {', '.join(names)}")


class PcscTransport:
    """One exclusive-enough pyscard connection to the card in ``reader``."""

    def __init__(self, reader: str) -> None:
        from smartcard.Exceptions import CardConnectionException, NoCardException
        from smartcard.System import readers

        found = next((r for r in readers() if str(r) == reader), None)
        if found is None:
            raise TransportError(f"no reader {reader!r}")
        self.reader = reader
        self._conn: Any = found.createConnection()
        try:
            self._conn.connect()
        except (NoCardException, CardConnectionException) as exc:
            raise TransportError(f"no card in {reader}: {exc}") from None
        self.atr = bytes(self._conn.getATR())

    def transmit(self, apdu: bytes) -> bytes:
        from smartcard.Exceptions import CardConnectionException

        try:
            data, sw1, sw2 = self._conn.transmit(list(apdu))
        except CardConnectionException as exc:
            raise TransportError(f"{self.reader}: {exc}") from None
        return bytes(data) + bytes([sw1, sw2])

    def close(self) -> None:
        from smartcard.Exceptions import CardConnectionException

        with contextlib.suppress(CardConnectionException):
            self._conn.disconnect()


def add_reader_argument(parser: Any) -> None:
    parser.add_argument(
        "--reader",
        help="reader name, or a part of it (default: the first reader)",
        default=None,
    )
