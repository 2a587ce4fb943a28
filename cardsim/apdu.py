"""Command APDU parsing and the status words the simulated chips answer."""

from __future__ import annotations

from dataclasses import dataclass

SW_OK = 0x9000
SW_EOF = 0x6282
SW_VERIFY_FAILED = 0x6300
SW_MEMORY_FAILURE = 0x6581
SW_WRONG_LENGTH = 0x6700
SW_CHANNEL_NOT_SUPPORTED = 0x6881
SW_SM_NOT_SUPPORTED = 0x6882
SW_LAST_COMMAND_EXPECTED = 0x6883
SW_CHAINING_NOT_SUPPORTED = 0x6884
SW_SECURITY_STATUS = 0x6982
SW_AUTH_BLOCKED = 0x6983
SW_REF_DATA_UNUSABLE = 0x6984
SW_CONDITIONS = 0x6985
SW_NO_CURRENT_EF = 0x6986
SW_SM_MISSING = 0x6987
SW_SM_INCORRECT = 0x6988
SW_WRONG_DATA = 0x6A80
SW_FUNC_NOT_SUPPORTED = 0x6A81
SW_FILE_NOT_FOUND = 0x6A82
SW_NOT_ENOUGH_MEMORY = 0x6A84
SW_WRONG_P1P2 = 0x6A86
SW_REF_NOT_FOUND = 0x6A88
SW_FILE_EXISTS = 0x6A89
SW_WRONG_OFFSET = 0x6B00
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_UNKNOWN = 0x6F00


class CardError(Exception):
    """A command ends with this status word (and no data)."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"SW {sw:04X}")
        self.sw = sw


def sw_bytes(sw: int) -> bytes:
    """Two status bytes."""
    return sw.to_bytes(2, "big")


@dataclass(frozen=True)
class Command:
    """A parsed short command APDU; ``le`` is None when absent, 256 for ``00``."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int | None

    @property
    def channel(self) -> int:
        """Logical channel number (0-3) carried by a first-interindustry or proprietary CLA."""
        return self.cla & 0x03

    @property
    def chained(self) -> bool:
        """Command chaining bit (more commands of this chain follow)."""
        return bool(self.cla & 0x10)

    @property
    def secure(self) -> bool:
        """Secure-messaging bits of the CLA."""
        return bool(self.cla & 0x0C)

    def header(self) -> str:
        """The four header bytes in hex, for logs."""
        return f"{self.cla:02X}{self.ins:02X}{self.p1:02X}{self.p2:02X}"


def parse(raw: bytes) -> Command:
    """Parse a short (or extended) command APDU; ``CardError(6700)`` when malformed."""
    if len(raw) < 4:
        raise CardError(SW_WRONG_LENGTH)
    cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
    body = raw[4:]
    if not body:
        return Command(cla, ins, p1, p2, b"", None)
    if len(body) == 1:
        return Command(cla, ins, p1, p2, b"", body[0] or 256)
    if body[0] == 0:
        return _parse_extended(cla, ins, p1, p2, body)
    lc = body[0]
    if len(body) == 1 + lc:
        return Command(cla, ins, p1, p2, bytes(body[1:]), None)
    if len(body) == 2 + lc:
        return Command(cla, ins, p1, p2, bytes(body[1 : 1 + lc]), body[1 + lc] or 256)
    raise CardError(SW_WRONG_LENGTH)


def _parse_extended(cla: int, ins: int, p1: int, p2: int, body: bytes) -> Command:
    if len(body) == 3:
        return Command(cla, ins, p1, p2, b"", int.from_bytes(body[1:3], "big") or 65536)
    if len(body) < 4:
        raise CardError(SW_WRONG_LENGTH)
    lc = int.from_bytes(body[1:3], "big")
    if lc == 0:
        raise CardError(SW_WRONG_LENGTH)
    if len(body) == 3 + lc:
        return Command(cla, ins, p1, p2, bytes(body[3:]), None)
    if len(body) == 5 + lc:
        le = int.from_bytes(body[3 + lc :], "big") or 65536
        return Command(cla, ins, p1, p2, bytes(body[3 : 3 + lc]), le)
    raise CardError(SW_WRONG_LENGTH)
