"""PKCS#15 (ISO 7816-15) file contents of a CPS4 card, built from the product definition.

Shaped for the OpenSC 0.23 quirks of reference/card-protocols.md §7: 2-byte relative paths in the
ODF and CDF, a non-empty private key path (``30 02 04 00``), a serial number in TokenInfo.
"""

from __future__ import annotations

from cards import tlv
from cards.products import KeySlot, PinPolicy, Product

__all__ = ["aodf", "cdf", "ef_dir", "odf", "prkdf", "render", "token_info"]

_T = tlv.Tlv


def _seq(*items: bytes) -> bytes:
    return tlv.encode(0x30, b"".join(items))


def _int(value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 8) // 8, "big")  # room for the sign bit
    return tlv.encode(0x02, raw)


def _bits(*positions: int) -> bytes:
    """A DER BIT STRING with the named bits (0 = most significant bit of the first byte)."""
    if not positions:
        return tlv.encode(0x03, b"\x00")
    size = max(positions) // 8 + 1
    value = bytearray(size)
    for p in positions:
        value[p // 8] |= 0x80 >> (p % 8)
    unused = 7 - max(positions) % 8
    return tlv.encode(0x03, bytes([unused]) + bytes(value))


def _utf8(text: str) -> bytes:
    return tlv.encode(0x0C, text.encode())


def _path(*fids: int) -> bytes:
    return _seq(tlv.encode(0x04, b"".join(f.to_bytes(2, "big") for f in fids)))


def ef_dir(product: Product) -> bytes:
    """EF.DIR (``3F00/2F00``): one application template ``61{4F AID, 50 label, 51 path}``."""
    app = product.contact.application
    return tlv.encode(
        0x61,
        [
            _T(0x4F, app.aid),
            _T(0x50, product.name.encode()),
            _T(0x51, (0x3F00).to_bytes(2, "big") + app.fid.to_bytes(2, "big")),
        ],
    )


def _fid(product: Product, name: str) -> int:
    for ef in product.contact.application.files:
        if ef.name == name:
            return ef.fid
    raise KeyError(f"{product.name} has no file {name}")


def odf(product: Product) -> bytes:
    """EF.ODF: private keys [0], certificates [4], authentication objects [8]."""
    return (
        tlv.encode(0xA0, _path(_fid(product, "EF.PrKDF")))
        + tlv.encode(0xA4, _path(_fid(product, "EF.CDF")))
        + tlv.encode(0xA8, _path(_fid(product, "EF.AODF")))
    )


def token_info(product: Product, serial: bytes) -> bytes:
    """EF.TokenInfo: version 0, serialNumber (EF.SN.ICC content), manufacturer, label."""
    return _seq(
        _int(0),
        tlv.encode(0x04, serial),
        _utf8("ANS"),
        tlv.encode(0x80, product.name.encode()),
        _bits(),
    )


def _pin_object(product: Product, pin: PinPolicy, auth_id: int) -> bytes:
    app = product.contact.application
    attributes = _seq(
        _bits(1, 4),  # local, initialized
        tlv.encode(0x0A, b"\x01"),  # ascii-numeric
        _int(pin.min_length),
        _int(pin.max_length),  # storedLength: no padding
        _int(pin.max_length),
        tlv.encode(0x80, _int(pin.reference)[2:]),  # pinReference [0] IMPLICIT INTEGER
        _seq(tlv.encode(0x04, (0x3F00).to_bytes(2, "big") + app.fid.to_bytes(2, "big"))),
    )
    return _seq(
        _seq(_utf8(pin.name), _bits(0, 1)),  # private, modifiable
        _seq(tlv.encode(0x04, bytes([auth_id]))),
        tlv.encode(0xA1, attributes),
    )


def aodf(product: Product) -> bytes:
    """EF.AODF: the holder's PIN (auth id 01)."""
    return _pin_object(product, product.pin, 0x01)


def _key_usage(slot: KeySlot) -> bytes:
    if slot.usage == "signature":
        return _bits(2, 9)  # sign, nonRepudiation
    return _bits(2)  # sign only: the authentication key does not decipher (ADR 0013)


def prkdf(product: Product) -> bytes:
    """EF.PrKDF: one RSA private key object per key slot, protected by the PIN."""
    out = b""
    for slot in product.key_slots:
        out += _seq(
            _seq(_utf8(slot.label), _bits(0), tlv.encode(0x04, b"\x01")),
            _seq(
                tlv.encode(0x04, bytes([slot.pkcs15_id])),
                _key_usage(slot),
                _int(slot.key_reference),
            ),
            tlv.encode(0xA1, _seq(_seq(tlv.encode(0x04, b"")), _int(slot.modulus_bits))),
        )
    return out


def cdf(product: Product) -> bytes:
    """EF.CDF: one X.509 certificate object per key slot, by 2-byte relative path."""
    out = b""
    for slot in product.key_slots:
        label = (
            "Certificat d'Authentification CPS"
            if slot.usage == "authentication"
            else "Certificat de Signature CPS"
        )
        out += _seq(
            _seq(_utf8(label)),
            _seq(tlv.encode(0x04, bytes([slot.pkcs15_id]))),
            tlv.encode(0xA1, _seq(_path(slot.certificate_fid))),
        )
    return out


def render(product: Product, serial: bytes) -> dict[str, bytes]:
    """Every PKCS#15 file's content by EF name (``EF.DIR``, ``EF.ODF``, …)."""
    return {
        "EF.DIR": ef_dir(product),
        "EF.ODF": odf(product),
        "EF.TokenInfo": token_info(product, serial),
        "EF.AODF": aodf(product),
        "EF.PrKDF": prkdf(product),
        "EF.CDF": cdf(product),
    }
