"""Minimal DER encoders for the few private extension values we write by hand.

Only definite-length, primitive encodings are needed (X.690 §8 and §10).
"""

from __future__ import annotations

import re

TAG_INTEGER = 0x02
TAG_OCTET_STRING = 0x04
TAG_UTF8_STRING = 0x0C
TAG_PRINTABLE_STRING = 0x13

_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]*")


def encode_length(length: int) -> bytes:
    """Definite length octets: short form below 128, long form otherwise."""
    if length < 0:
        raise ValueError("a length cannot be negative")
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    """One primitive TLV with a single-octet tag."""
    return bytes([tag]) + encode_length(len(content)) + content


def encode_integer(value: int) -> bytes:
    """INTEGER in the minimal two's-complement form."""
    length = max(1, (value.bit_length() + 8) // 8)
    body = value.to_bytes(length, "big", signed=True)
    return tlv(TAG_INTEGER, body)


def encode_octet_string(value: bytes) -> bytes:
    """OCTET STRING."""
    return tlv(TAG_OCTET_STRING, value)


def encode_printable_string(value: str) -> bytes:
    """PrintableString; refuses characters outside its alphabet (X.680 §41.4)."""
    if _PRINTABLE.fullmatch(value) is None:
        raise ValueError("value has characters outside the PrintableString alphabet")
    return tlv(TAG_PRINTABLE_STRING, value.encode("ascii"))


def encode_utf8_string(value: str) -> bytes:
    """UTF8String."""
    return tlv(TAG_UTF8_STRING, value.encode("utf-8"))
