"""Minimal DER encoders: the private extension values we write by hand, and the pieces of a CRL
that ``pki.domain.crl_der`` assembles.

Only definite-length encodings with single-octet tags are needed (X.690 §8 and §10).
"""

from __future__ import annotations

import datetime as dt
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


TAG_BOOLEAN = 0x01
TAG_BIT_STRING = 0x03
TAG_NULL = 0x05
TAG_OID = 0x06
TAG_ENUMERATED = 0x0A
TAG_UTC_TIME = 0x17
TAG_GENERALIZED_TIME = 0x18
TAG_SEQUENCE = 0x30


def sequence(*parts: bytes) -> bytes:
    """SEQUENCE of already encoded elements (constructed, tag 0x30)."""
    return tlv(TAG_SEQUENCE, b"".join(parts))


def encode_boolean(value: bool) -> bytes:
    """BOOLEAN in DER (TRUE is 0xFF)."""
    return tlv(TAG_BOOLEAN, b"\xff" if value else b"\x00")


def encode_enumerated(value: int) -> bytes:
    """ENUMERATED, encoded like an INTEGER."""
    return bytes([TAG_ENUMERATED]) + encode_integer(value)[1:]


def encode_bit_string(value: bytes) -> bytes:
    """BIT STRING of whole octets (no unused bits)."""
    return tlv(TAG_BIT_STRING, b"\x00" + value)


def encode_oid(dotted: str) -> bytes:
    """OBJECT IDENTIFIER from its dotted form (X.690 §8.19)."""
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39):
        raise ValueError(f"not an object identifier: {dotted!r}")
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(TAG_OID, bytes(body))


def encode_time(moment: dt.datetime) -> bytes:
    """RFC 5280 §4.1.2.5 Time: UTCTime through 2049, GeneralizedTime from 2050, seconds only."""
    if moment.tzinfo is None:
        raise ValueError("a time must be timezone-aware")
    utc = moment.astimezone(dt.UTC)
    if 1950 <= utc.year <= 2049:
        return tlv(TAG_UTC_TIME, utc.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    return tlv(TAG_GENERALIZED_TIME, f"{utc.year:04d}{utc:%m%d%H%M%S}Z".encode("ascii"))
