"""Typed exceptions of the card library; every message names the command it concerns."""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "CardError",
    "CardMismatch",
    "CheckpointError",
    "CryptoError",
    "DesfireStatusError",
    "MacError",
    "MalformedResponse",
    "PaddingError",
    "ProgramError",
    "ProtocolError",
    "RollbackImpossible",
    "StatusWordError",
    "TlvError",
    "TransportError",
    "VerificationError",
    "sw_meaning",
]


class CardError(Exception):
    """Base class of every error raised by ``cards``."""


class CryptoError(CardError, ValueError):
    """A cryptographic primitive received an argument of the wrong size or form."""


class PaddingError(CryptoError):
    """ISO 9797-1 method 2 padding is missing or malformed (wrong key or tampered data)."""


class TlvError(CardError, ValueError):
    """BER-TLV bytes that do not decode (truncated, bad length, trailing bytes)."""


class TransportError(CardError):
    """The transport could not carry an APDU (reader gone, card removed, relay failure)."""


class ProtocolError(CardError):
    """A host-side state error: a command used out of sequence (e.g. no secure channel open)."""

    def __init__(self, command: str, message: str) -> None:
        self.command = command
        super().__init__(f"{command}: {message}")


class MalformedResponse(CardError):
    """A response APDU whose shape is wrong: too short, wrong length, undecodable content."""

    def __init__(self, command: str, message: str) -> None:
        self.command = command
        super().__init__(f"{command}: malformed response: {message}")


class MacError(CardError):
    """A response MAC or card cryptogram did not verify; no data of that response is released."""

    def __init__(self, command: str, message: str = "response MAC does not verify") -> None:
        self.command = command
        super().__init__(f"{command}: {message}")


class AuthenticationError(CardError):
    """Mutual authentication failed: the card cryptogram or the card's RndA' is wrong."""

    def __init__(self, command: str, message: str) -> None:
        self.command = command
        super().__init__(f"{command}: {message}")


_SW_MEANINGS: dict[int, str] = {
    0x6281: "data may be corrupted",
    0x6282: "end of file reached before reading Le bytes",
    0x6283: "selected file deactivated",
    0x6581: "memory failure",
    0x6700: "wrong length",
    0x6881: "logical channel not supported",
    0x6882: "secure messaging not supported",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6984: "reference data not usable",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed (no current EF)",
    0x6987: "expected secure messaging data objects missing",
    0x6988: "incorrect secure messaging data objects",
    0x6A80: "wrong data",
    0x6A81: "function not supported",
    0x6A82: "file not found",
    0x6A83: "record not found",
    0x6A84: "not enough memory",
    0x6A86: "wrong P1/P2",
    0x6A88: "referenced data not found",
    0x6A89: "file already exists",
    0x6A8A: "DF name already exists",
    0x6B00: "wrong parameters (offset outside the EF)",
    0x6D00: "INS not supported",
    0x6E00: "CLA not supported",
    0x6F00: "no precise diagnosis",
    0x9000: "success",
}


def sw_meaning(sw: int) -> str:
    """Human meaning of an ISO 7816-4 status word, e.g. ``0x63C2`` → "wrong PIN, 2 tries left"."""
    if sw in _SW_MEANINGS:
        return _SW_MEANINGS[sw]
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        tries = sw2 & 0x0F
        return f"verification failed, {tries} {'try' if tries == 1 else 'tries'} left"
    if sw1 == 0x61:
        return f"{sw2} more bytes available"
    if sw1 == 0x6C:
        return f"wrong Le, exact length is {sw2}"
    return "unknown status"


class StatusWordError(CardError):
    """The card answered a status word the command did not expect."""

    def __init__(self, command: str, sw: int, meaning: str | None = None) -> None:
        self.command = command
        self.sw = sw
        self.meaning = meaning if meaning is not None else sw_meaning(sw)
        super().__init__(f"{command}: {self.meaning} (SW {sw:04X})")

    @property
    def tries_left(self) -> int | None:
        """Remaining tries for a ``63 Cx`` answer, else None."""
        if self.sw & 0xFFF0 == 0x63C0:
            return self.sw & 0x0F
        return None


_DESFIRE_MEANINGS: dict[int, str] = {
    0x00: "success",
    0x0C: "no changes",
    0x0E: "out of EEPROM",
    0x1C: "illegal command",
    0x1E: "integrity error",
    0x40: "no such key",
    0x7E: "length error",
    0x9D: "permission denied",
    0x9E: "parameter error",
    0xA0: "application not found",
    0xAE: "authentication error",
    0xAF: "additional frame",
    0xBE: "boundary error",
    0xCA: "command aborted",
    0xDE: "duplicate",
    0xF0: "file not found",
}


class DesfireStatusError(StatusWordError):
    """A DESFire native status (``91 xx``) other than the expected one."""

    def __init__(self, command: str, status: int) -> None:
        self.status = status
        meaning = _DESFIRE_MEANINGS.get(status, "unknown DESFire status")
        super().__init__(command, 0x9100 | status, meaning)


class ProgramError(CardError):
    """A personalization program was driven wrongly (bad responses count, unexpected input)."""


class CheckpointError(ProgramError):
    """A checkpoint does not match the program it is meant to resume."""


class CardMismatch(ProgramError):
    """The card in the reader is not the one the session expects (serial, KDD, UID, ATR)."""


class VerificationError(ProgramError):
    """The final verification failed: read-back differs, or a signature does not verify."""


class RollbackImpossible(ProgramError):
    """The card cannot be wiped back to stock (its lifecycle is closed): mark it SPOILED."""
