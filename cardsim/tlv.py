"""A small BER-TLV reader and writer for the card side (tags of up to three bytes)."""

from __future__ import annotations


class TlvError(ValueError):
    """Malformed BER-TLV."""


def encode(tag: int, value: bytes) -> bytes:
    """One TLV with a definite length."""
    tag_bytes = tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big")
    return tag_bytes + encode_length(len(value)) + value


def encode_length(length: int) -> bytes:
    """BER definite length."""
    if length < 0x80:
        return bytes([length])
    if length < 0x100:
        return bytes([0x81, length])
    if length < 0x10000:
        return b"\x82" + length.to_bytes(2, "big")
    raise TlvError("length too large")


def parse(data: bytes) -> list[tuple[int, bytes]]:
    """Parse a sequence of TLVs into (tag, value) pairs; padding bytes 00/FF between are skipped."""
    items: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        if data[pos] in (0x00, 0xFF):
            pos += 1
            continue
        tag, pos = _read_tag(data, pos)
        length, pos = _read_length(data, pos)
        if pos + length > len(data):
            raise TlvError("value runs past the end")
        items.append((tag, bytes(data[pos : pos + length])))
        pos += length
    return items


def find(data: bytes, tag: int) -> bytes | None:
    """The value of the first TLV with this tag at the top level, or None."""
    for item_tag, value in parse(data):
        if item_tag == tag:
            return value
    return None


def _read_tag(data: bytes, pos: int) -> tuple[int, int]:
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        for _ in range(2):
            if pos >= len(data):
                raise TlvError("truncated tag")
            tag = (tag << 8) | data[pos]
            pos += 1
            if not data[pos - 1] & 0x80:
                break
        else:
            raise TlvError("tag too long")
    return tag, pos


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise TlvError("missing length")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0 or count > 3 or pos + count > len(data):
        raise TlvError("bad length")
    return int.from_bytes(data[pos : pos + count], "big"), pos + count
