"""Builders of the ISO 7816-15 (PKCS#15) files standard middleware reads (card-protocols.md §7).

Used to pre-personalize the CPS3 fixture and by tests that personalize a CPS4 through the secure
channel. The encodings follow what OpenSC 0.23 accepts: 2-byte relative paths, a non-empty
private-key path, a serial number in TokenInfo.
"""

from __future__ import annotations

from dataclasses import dataclass

from cardsim.facts import CPS4, PKCS15_DF_FID, pkcs15_file
from cardsim.fs import MF_FID
from cardsim.tlv import encode

__all__ = [
    "AODF_FID",
    "CDF_FID",
    "CPX_ALGORITHMS",
    "ODF_FID",
    "PKCS15_DF_FID",
    "PRKDF_FID",
    "TOKENINFO_FID",
    "AlgorithmInfo",
    "KeyEntry",
    "aodf",
    "cdf",
    "ef_dir",
    "odf",
    "prkdf",
    "token_info",
]

ODF_FID = pkcs15_file(CPS4, "EF.ODF").fid
TOKENINFO_FID = pkcs15_file(CPS4, "EF.TokenInfo").fid
AODF_FID = pkcs15_file(CPS4, "EF.AODF").fid
PRKDF_FID = pkcs15_file(CPS4, "EF.PrKDF").fid
CDF_FID = pkcs15_file(CPS4, "EF.CDF").fid


@dataclass(frozen=True)
class KeyEntry:
    """A private key and its certificate file."""

    label: str
    key_id: bytes
    key_ref: int
    cert_fid: int
    usage_sign: bool = True
    usage: bytes = b""
    """BIT STRING content of the key usage; empty: from ``usage_sign``."""


@dataclass(frozen=True)
class AlgorithmInfo:
    """A TokenInfo ``supportedAlgorithms`` entry (PKCS#15 AlgorithmInfo)."""

    reference: int
    mechanism: int
    """PKCS#11 mechanism (CKM_*)."""
    operations: bytes
    """BIT STRING content of supportedOperations."""
    oid: bytes
    """DER content of the algorithm OBJECT IDENTIFIER."""
    algo_ref: int
    """The card's algorithm identifier, sent in the MSE ``80`` tag."""


_HASH, _SIGN, _DECIPHER = b"\x01\x02", b"\x06\x40", b"\x02\x04"  # bits 6, 1, 5
_RSA = bytes.fromhex("2A864886F70D010101")
CPX_ALGORITHMS = (
    AlgorithmInfo(1, 0x220, _HASH, bytes.fromhex("2B0E03021A"), 0x10),  # SHA-1
    AlgorithmInfo(2, 0x250, _HASH, bytes.fromhex("608648016503040201"), 0x40),  # SHA-256
    AlgorithmInfo(3, 0x006, _SIGN, bytes.fromhex("2A864886F70D010105"), 0x12),  # SHA1-RSA-PKCS
    AlgorithmInfo(4, 0x040, _SIGN, bytes.fromhex("2A864886F70D01010B"), 0x42),  # SHA256-RSA-PKCS
    AlgorithmInfo(5, 0x001, _SIGN, _RSA, 0x02),  # RSA-PKCS signature (INTERNAL AUTHENTICATE)
    AlgorithmInfo(6, 0x001, _DECIPHER, _RSA, 0x1A),  # RSA-PKCS decipher
)
"""The TokenInfo algorithms of a real CPS3 (docs/cardsim.md, "CPS3 facts")."""


def _seq(*items: bytes) -> bytes:
    return encode(0x30, b"".join(items))


def _utf8(text: str) -> bytes:
    return encode(0x0C, text.encode())


def _path(fid: int) -> bytes:
    return _seq(encode(0x04, fid.to_bytes(2, "big")))


def ef_dir(aid: bytes, label: str, df_fid: int = PKCS15_DF_FID) -> bytes:
    """EF.DIR (3F00/2F00) with one application template."""
    path = MF_FID.to_bytes(2, "big") + df_fid.to_bytes(2, "big")
    return encode(0x61, encode(0x4F, aid) + encode(0x50, label.encode()) + encode(0x51, path))


def odf() -> bytes:
    """EF.ODF pointing to the AODF, PrKDF and CDF."""
    return (
        encode(0xA8, _path(AODF_FID))
        + encode(0xA0, _path(PRKDF_FID))
        + encode(0xA4, _path(CDF_FID))
    )


def token_info(
    serial: str,
    label: str,
    *,
    manufacturer: str = "ANS (simulated)",
    read_only: bool = False,
    algorithms: tuple[AlgorithmInfo, ...] = (),
) -> bytes:
    """EF.TokenInfo with a serial number, a label and optionally the supported algorithms."""
    flags = b"\x06\xc0" if read_only else b"\x06\x40"  # readOnly, loginRequired
    supported = b"".join(
        _seq(
            encode(0x02, bytes([a.reference])),
            encode(0x02, a.mechanism.to_bytes(2 if a.mechanism > 0x7F else 1, "big")),
            encode(0x05, b""),
            encode(0x03, a.operations),
            encode(0x06, a.oid),
            encode(0x02, bytes([a.algo_ref])),
        )
        for a in algorithms
    )
    return _seq(
        encode(0x02, b"\x00"),
        encode(0x04, serial.encode()),
        _utf8(manufacturer),
        encode(0x80, label.encode()),
        encode(0x03, flags),
        *([encode(0xA2, supported)] if supported else []),
    )


def aodf(
    pin_ref: int,
    auth_id: bytes,
    min_len: int = 4,
    stored_len: int = 4,
    path: tuple[int, ...] = (MF_FID, PKCS15_DF_FID),
) -> bytes:
    """EF.AODF with the holder PIN (ASCII digits, no padding) kept in the DF at ``path``."""
    common = _seq(_utf8("Code porteur"), encode(0x03, b"\x06\xc0"))
    auth = _seq(encode(0x04, auth_id))
    attrs = _seq(
        encode(0x03, b"\x02\x0c\x10"),  # pinFlags: local, initialized, needs-padding off
        encode(0x0A, b"\x01"),  # ascii-numeric
        encode(0x02, bytes([min_len])),
        encode(0x02, bytes([stored_len])),
        encode(0x80, bytes([pin_ref])),
        _seq(encode(0x04, b"".join(fid.to_bytes(2, "big") for fid in path))),
    )
    return _seq(common, auth, encode(0xA1, attrs))


def prkdf(keys: list[KeyEntry], auth_id: bytes) -> bytes:
    """EF.PrKDF with RSA-2048 private keys guarded by the PIN."""
    out = b""
    for k in keys:
        usage = k.usage or (
            b"\x06\x20\x40" if k.usage_sign else b"\x05\x60"
        )  # sign+nonRep / decrypt+sign
        out += _seq(
            _seq(_utf8(k.label), encode(0x03, b"\x07\x80"), encode(0x04, auth_id)),
            _seq(encode(0x04, k.key_id), encode(0x03, usage), encode(0x02, bytes([k.key_ref]))),
            encode(0xA1, _seq(_seq(encode(0x04, b"")), encode(0x02, (2048).to_bytes(2, "big")))),
        )
    return out


def cdf(keys: list[KeyEntry]) -> bytes:
    """EF.CDF with one X.509 certificate per key."""
    out = b""
    for k in keys:
        out += _seq(
            _seq(_utf8(k.label)),
            _seq(encode(0x04, k.key_id)),
            encode(0xA1, _seq(_path(k.cert_fid))),
        )
    return out
