"""BER-TLV (ISO 7816-4 §6 / X.690 subset) encoding and decoding.

Tags are kept as integers of their encoded bytes (``0x7F49``, ``0x5F20``); lengths use the definite
forms ``00``–``7F``, ``81 xx``, ``82 xxxx``, ``83 xxxxxx``. Indefinite lengths are refused: smart
cards do not use them and accepting them hides truncation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cards.errors import TlvError

__all__ = [
    "Tlv",
    "decode",
    "decode_one",
    "encode",
    "encode_length",
    "encode_tag",
    "find",
    "find_all",
    "is_constructed",
    "require",
]


_TAGS: dict[int, bytes] = {}
"""Tags already encoded and checked: a card program encodes the same few tags thousands of times."""


def encode_tag(tag: int) -> bytes:
    """The encoded bytes of a tag given as its integer value (``0x7F49`` → ``7F 49``)."""
    raw = _TAGS.get(tag)
    if raw is not None:
        return raw
    if tag < 0:
        raise TlvError(f"negative tag {tag}")
    length = max(1, (tag.bit_length() + 7) // 8)
    raw = tag.to_bytes(length, "big")
    _check_tag_bytes(raw)
    if len(_TAGS) < 1024:  # bounded: tags come from code, but decode hands back any tag
        _TAGS[tag] = raw
    return raw


def _check_tag_bytes(raw: bytes) -> None:
    first = raw[0]
    if first in (0x00, 0xFF):
        raise TlvError(f"tag {first:02X} is reserved as padding")
    if first & 0x1F != 0x1F:
        if len(raw) != 1:
            raise TlvError(f"tag {raw.hex().upper()}: a one-byte tag form followed by more bytes")
        return
    if len(raw) < 2:
        raise TlvError(f"tag {raw.hex().upper()}: multi-byte tag without subsequent bytes")
    for i, b in enumerate(raw[1:], 1):
        last = i == len(raw) - 1
        if bool(b & 0x80) == last:
            raise TlvError(f"tag {raw.hex().upper()}: bad continuation bits")


def is_constructed(tag: int) -> bool:
    """True if the tag's first byte has the constructed bit (``20``)."""
    return bool(encode_tag(tag)[0] & 0x20)


def encode_length(length: int) -> bytes:
    """Definite-form BER length."""
    if length < 0:
        raise TlvError(f"negative length {length}")
    if length < 0x80:
        return bytes([length])
    n = (length.bit_length() + 7) // 8
    if n > 3:
        raise TlvError(f"length {length} too large for a card TLV")
    return bytes([0x80 | n]) + length.to_bytes(n, "big")


@dataclass(frozen=True, slots=True)
class Tlv:
    """One data object; ``value`` is raw, ``children()`` parses a constructed one."""

    tag: int
    value: bytes

    def encode(self) -> bytes:
        """Encoded bytes of this data object."""
        return encode(self.tag, self.value)

    @property
    def constructed(self) -> bool:
        """True if the tag is constructed."""
        return is_constructed(self.tag)

    def children(self) -> list[Tlv]:
        """The nested data objects of a constructed value."""
        if not self.constructed:
            raise TlvError(f"tag {self.tag:X} is primitive, it has no children")
        return decode(self.value)

    def find(self, tag: int) -> Tlv | None:
        """The first direct child with this tag, or None."""
        return find(self.children(), tag)


def encode(tag: int, value: bytes | Iterable[Tlv]) -> bytes:
    """Encode one data object; ``value`` is raw bytes or the children of a constructed object."""
    raw = value if isinstance(value, bytes | bytearray) else b"".join([t.encode() for t in value])
    return encode_tag(tag) + encode_length(len(raw)) + bytes(raw)


def decode_one(data: bytes, offset: int = 0) -> tuple[Tlv, int]:
    """Decode the data object at ``offset``; return it and the offset just after it."""
    end = len(data)
    if offset >= end:
        raise TlvError("no data object: input is empty")
    start = offset
    first = data[offset]
    offset += 1
    if first & 0x1F == 0x1F:
        while True:
            if offset >= end:
                raise TlvError(f"truncated tag at offset {start}")
            b = data[offset]
            offset += 1
            if not b & 0x80:
                break
            if offset - start > 4:
                raise TlvError(f"tag longer than 4 bytes at offset {start}")
    tag = int.from_bytes(data[start:offset], "big")
    if offset >= end:
        raise TlvError(f"tag {tag:X}: missing length")
    lb = data[offset]
    offset += 1
    if lb < 0x80:
        length = lb
    elif lb == 0x80:
        raise TlvError(f"tag {tag:X}: indefinite length is not allowed")
    else:
        n = lb & 0x7F
        if n > 3:
            raise TlvError(f"tag {tag:X}: length field of {n} bytes")
        if offset + n > end:
            raise TlvError(f"tag {tag:X}: truncated length")
        length = int.from_bytes(data[offset : offset + n], "big")
        offset += n
    if offset + length > end:
        raise TlvError(f"tag {tag:X}: value of {length} bytes but only {end - offset} left")
    return Tlv(tag, bytes(data[offset : offset + length])), offset + length


def iter_decode(data: bytes) -> Iterator[Tlv]:
    """Yield every data object of a concatenation (``00``/``FF`` padding is skipped)."""
    offset = 0
    while offset < len(data):
        if data[offset] in (0x00, 0xFF):
            offset += 1
            continue
        tlv, offset = decode_one(data, offset)
        yield tlv


def decode(data: bytes) -> list[Tlv]:
    """Decode a concatenation of data objects; any trailing garbage raises TlvError."""
    return list(iter_decode(data))


def find(tlvs: Iterable[Tlv], tag: int) -> Tlv | None:
    """The first data object with ``tag`` among ``tlvs``, or None."""
    for t in tlvs:
        if t.tag == tag:
            return t
    return None


def find_all(tlvs: Iterable[Tlv], tag: int) -> list[Tlv]:
    """Every data object with ``tag`` among ``tlvs``."""
    return [t for t in tlvs if t.tag == tag]


def require(tlvs: Iterable[Tlv], tag: int) -> Tlv:
    """The data object with ``tag``; TlvError naming the tag if it is absent."""
    found = find(tlvs, tag)
    if found is None:
        raise TlvError(f"tag {tag:X} missing")
    return found
