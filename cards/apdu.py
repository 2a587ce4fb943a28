"""Command and response APDUs (ISO 7816-4 §5): short and extended lengths, chaining, channels.

``CommandApdu.le`` is Ne, the number of bytes expected: ``None`` for no Le field, 1..256 in short
form (256 is encoded ``00``) and up to 65536 in extended form (``00 00``).

The class byte carries the logical channel, the secure-messaging indication and the chaining bit:
channels 0-3 in bits 2-1 with SM in bit 3 (``04``, the GlobalPlatform C-MAC bit); channels 4-19 in
the "further interindustry" coding (``40`` + channel-4, SM bit ``20``). Bit 8 (proprietary class,
``80``) is kept as given, so GP commands (``80``/``84``, ``C0``…) use the same helpers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

from cards.errors import MalformedResponse, StatusWordError

__all__ = [
    "CHAINING_BIT",
    "MAX_SHORT_DATA",
    "MAX_SHORT_LE",
    "ClassByte",
    "CommandApdu",
    "ResponseApdu",
    "lc_field",
    "make_cla",
    "parse_cla",
    "with_channel",
    "with_secure_messaging",
]

MAX_SHORT_DATA = 255
MAX_SHORT_LE = 256
MAX_EXTENDED = 65535
MAX_EXTENDED_LE = 65536
CHAINING_BIT = 0x10


class ClassByte(NamedTuple):
    """The decoded meaning of a CLA byte."""

    channel: int
    proprietary: bool
    secure_messaging: bool
    chaining: bool


def make_cla(
    channel: int = 0,
    *,
    proprietary: bool = False,
    secure_messaging: bool = False,
    chaining: bool = False,
) -> int:
    """Build a CLA byte for a logical channel (0-19)."""
    if not 0 <= channel <= 19:
        raise ValueError(f"logical channel {channel} outside 0..19")
    if channel < 4:
        cla = channel | (0x04 if secure_messaging else 0)
    else:
        cla = 0x40 | (channel - 4) | (0x20 if secure_messaging else 0)
    if chaining:
        cla |= CHAINING_BIT
    if proprietary:
        cla |= 0x80
    return cla


def parse_cla(cla: int) -> ClassByte:
    """Decode channel, proprietary class, SM indication and chaining from a CLA byte."""
    proprietary = bool(cla & 0x80)
    chaining = bool(cla & CHAINING_BIT)
    if cla & 0x40:
        return ClassByte(4 + (cla & 0x0F), proprietary, bool(cla & 0x20), chaining)
    return ClassByte(cla & 0x03, proprietary, bool(cla & 0x0C), chaining)


def with_channel(cla: int, channel: int) -> int:
    """The same CLA moved to another logical channel."""
    c = parse_cla(cla)
    return make_cla(
        channel, proprietary=c.proprietary, secure_messaging=c.secure_messaging, chaining=c.chaining
    )


def with_secure_messaging(cla: int) -> int:
    """The same CLA with the secure-messaging indication set (``04`` or ``20``)."""
    c = parse_cla(cla)
    return make_cla(
        c.channel, proprietary=c.proprietary, secure_messaging=True, chaining=c.chaining
    )


def lc_field(length: int, *, extended: bool) -> bytes:
    """The Lc field of a command with ``length`` data bytes: one byte, or ``00`` + two bytes."""
    if extended:
        return b"\x00" + length.to_bytes(2, "big")
    return bytes((length,))


def _check_byte(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{name} {value} is not a byte")


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """A command APDU; ``extended`` forces the extended length form even for small fields."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        # One chained comparison for the usual, valid case (a program builds a few hundred APDUs
        # per card: issue 12); the per-field checks only run to name the field that is wrong.
        if not (
            0 <= self.cla <= 0xFF
            and 0 <= self.ins <= 0xFF
            and 0 <= self.p1 <= 0xFF
            and 0 <= self.p2 <= 0xFF
        ):
            for name in ("cla", "ins", "p1", "p2"):
                _check_byte(name.upper(), getattr(self, name))
        if len(self.data) > MAX_EXTENDED:
            raise ValueError(f"command data of {len(self.data)} bytes exceeds 65535")
        if self.le is not None and not 1 <= self.le <= MAX_EXTENDED_LE:
            raise ValueError(f"Le {self.le} outside 1..65536")

    @property
    def is_extended(self) -> bool:
        """True if this APDU needs (or was asked for) the extended length form."""
        return (
            self.extended
            or len(self.data) > MAX_SHORT_DATA
            or (self.le is not None and self.le > MAX_SHORT_LE)
        )

    @property
    def header(self) -> bytes:
        """CLA INS P1 P2."""
        return bytes([self.cla, self.ins, self.p1, self.p2])

    def encode(self) -> bytes:
        """The APDU bytes as they go on the wire."""
        data, le = self.data, self.le
        out = bytearray((self.cla, self.ins, self.p1, self.p2))
        ext = self.is_extended
        if data:
            out += lc_field(len(data), extended=ext)
            out += data
        if le is not None:
            if ext:
                le = 0 if le == MAX_EXTENDED_LE else le
                out += (b"" if data else b"\x00") + le.to_bytes(2, "big")
            else:
                out.append(0 if le == MAX_SHORT_LE else le)
        return bytes(out)

    def __bytes__(self) -> bytes:
        return self.encode()

    @classmethod
    def decode(cls, raw: bytes) -> CommandApdu:
        """Parse command APDU bytes (cases 1, 2S/E, 3S/E, 4S/E); ValueError if malformed."""
        if len(raw) < 4:
            raise ValueError(f"command APDU of {len(raw)} bytes is shorter than its header")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0] or MAX_SHORT_LE)
        if body[0] == 0 and len(body) >= 3:
            # extended form
            n = int.from_bytes(body[1:3], "big")
            if len(body) == 3:
                return cls(cla, ins, p1, p2, le=n or MAX_EXTENDED_LE, extended=True)
            if n == 0:
                raise ValueError("extended Lc of zero")
            rest = body[3:]
            if len(rest) == n:
                return cls(cla, ins, p1, p2, bytes(rest), extended=True)
            if len(rest) == n + 2:
                le = int.from_bytes(rest[n:], "big") or MAX_EXTENDED_LE
                return cls(cla, ins, p1, p2, bytes(rest[:n]), le, extended=True)
            raise ValueError(f"extended Lc {n} does not match {len(rest)} remaining bytes")
        n = body[0]
        rest = body[1:]
        if n == 0:
            raise ValueError("short Lc of zero")
        if len(rest) == n:
            return cls(cla, ins, p1, p2, bytes(rest))
        if len(rest) == n + 1:
            return cls(cla, ins, p1, p2, bytes(rest[:n]), rest[n] or MAX_SHORT_LE)
        raise ValueError(f"Lc {n} does not match {len(rest)} remaining bytes")

    def on_channel(self, channel: int) -> CommandApdu:
        """This command on another logical channel."""
        return replace(self, cla=with_channel(self.cla, channel))

    @property
    def channel(self) -> int:
        """The logical channel coded in CLA."""
        return parse_cla(self.cla).channel

    def chain(self, max_data: int = MAX_SHORT_DATA) -> list[CommandApdu]:
        """Split into chained APDUs (CLA bit ``10`` on all but the last); Le on the last."""
        if max_data < 1:
            raise ValueError("chunk size must be positive")
        if len(self.data) <= max_data:
            return [self]
        chunks = [self.data[i : i + max_data] for i in range(0, len(self.data), max_data)]
        out = [
            replace(self, cla=self.cla | CHAINING_BIT, data=c, le=None, extended=False)
            for c in chunks[:-1]
        ]
        out.append(replace(self, data=chunks[-1], extended=False))
        return out


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    """A response APDU: data and the status word SW1 SW2 as one integer."""

    data: bytes
    sw: int

    @property
    def sw1(self) -> int:
        """First status byte."""
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        """Second status byte."""
        return self.sw & 0xFF

    @property
    def sw_bytes(self) -> bytes:
        """SW1 SW2 as two bytes."""
        return self.sw.to_bytes(2, "big")

    def encode(self) -> bytes:
        """Data followed by SW1 SW2."""
        return self.data + self.sw_bytes

    def __bytes__(self) -> bytes:
        return self.encode()

    @classmethod
    def decode(cls, raw: bytes, command: str = "response") -> ResponseApdu:
        """Split response bytes; MalformedResponse naming ``command`` if there is no status word."""
        if len(raw) < 2:
            raise MalformedResponse(command, f"{len(raw)} bytes, no status word")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))

    def check(self, command: str, expected: tuple[int, ...] = (0x9000,)) -> ResponseApdu:
        """Return self if SW is expected, else raise StatusWordError naming ``command``."""
        if self.sw not in expected:
            raise StatusWordError(command, self.sw)
        return self
