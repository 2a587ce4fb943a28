"""The transport seam: ``transmit(command APDU bytes) -> response APDU bytes``.

The station's pyscard adapter implements ``Transport``; tests and benchmarks use
``FunctionTransport`` around a pure card-side function. ``LoggingTransport`` records traffic for
support without ever writing the data of sensitive commands (PINs, keys, cryptograms) or the
responses to them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from cards.apdu import CommandApdu, ResponseApdu, make_cla, parse_cla
from cards.errors import MalformedResponse

__all__ = [
    "SENSITIVE_DESFIRE_INS",
    "SENSITIVE_INS",
    "FunctionTransport",
    "LoggingTransport",
    "Transport",
    "is_sensitive",
    "transmit_apdu",
]


@runtime_checkable
class Transport(Protocol):
    """Carries one command APDU to the card and returns its response APDU (data ‖ SW1 SW2)."""

    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU; return the response bytes or raise TransportError."""
        ...


class FunctionTransport:
    """An in-process transport that calls a function (a card simulator, a test double)."""

    def __init__(self, card: Callable[[bytes], bytes]) -> None:
        self._card = card
        self.count = 0

    def transmit(self, apdu: bytes) -> bytes:
        """Hand the APDU to the function and return what it answers."""
        self.count += 1
        return self._card(bytes(apdu))


MAX_GET_RESPONSE = 256
"""A card answering more ``61 xx`` rounds than this is treated as broken."""

SENSITIVE_INS = frozenset(
    {
        0x20,  # VERIFY
        0x24,  # CHANGE REFERENCE DATA
        0x2C,  # RESET RETRY COUNTER
        0x82,  # EXTERNAL AUTHENTICATE (cryptogram)
        0x86,  # GENERAL AUTHENTICATE
        0x87,  # GENERAL AUTHENTICATE (PIV)
        0xE2,  # GP STORE DATA
        0xD8,  # GP PUT KEY
    }
)
"""ISO/GP instructions whose data is secret."""

SENSITIVE_DESFIRE_INS = frozenset({0xC4, 0x71, 0x77, 0xAA, 0xAF, 0x51, 0x5C})
"""DESFire native commands (CLA ``90``) carrying keys, authentication tokens or the real UID."""


def is_sensitive(apdu: bytes) -> bool:
    """True if the command's data (and its response) must never be logged."""
    if len(apdu) < 4:
        return False
    if apdu[0] == 0x90:
        return apdu[1] in SENSITIVE_DESFIRE_INS
    return apdu[1] in SENSITIVE_INS


class LoggingTransport:
    """Wraps a transport and logs each exchange; sensitive commands show only their header."""

    def __init__(
        self,
        inner: Transport,
        logger: logging.Logger | None = None,
        sensitive: Callable[[bytes], bool] = is_sensitive,
    ) -> None:
        self._inner = inner
        self._log = logger or logging.getLogger("cards.apdu")
        self._sensitive = sensitive

    def transmit(self, apdu: bytes) -> bytes:
        """Transmit through the inner transport, logging a redacted trace."""
        secret = self._sensitive(apdu)
        if secret:
            self._log.debug("> %s [%d bytes redacted]", apdu[:4].hex().upper(), len(apdu) - 4)
        else:
            self._log.debug("> %s", apdu.hex().upper())
        response = self._inner.transmit(apdu)
        if secret:
            self._log.debug(
                "< [%d bytes redacted] %s", max(0, len(response) - 2), response[-2:].hex().upper()
            )
        else:
            self._log.debug("< %s", response.hex().upper())
        return response


def transmit_apdu(
    transport: Transport, apdu: CommandApdu | bytes, command: str, *, get_response: bool = True
) -> ResponseApdu:
    """Send one APDU, follow ``61 xx`` with GET RESPONSE, and decode the response."""
    raw = apdu.encode() if isinstance(apdu, CommandApdu) else bytes(apdu)
    response = ResponseApdu.decode(transport.transmit(raw), command)
    data = response.data
    get_response_cla = make_cla(parse_cla(raw[0]).channel) if raw else 0
    rounds = 0
    while get_response and response.sw1 == 0x61:
        rounds += 1
        if rounds > MAX_GET_RESPONSE:
            raise MalformedResponse(command, "endless 61xx response chain")
        get = bytes([get_response_cla, 0xC0, 0x00, 0x00, response.sw2])
        response = ResponseApdu.decode(transport.transmit(get), f"{command} (GET RESPONSE)")
        data += response.data
    return ResponseApdu(data, response.sw)
