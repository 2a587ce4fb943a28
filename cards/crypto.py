"""Vector-verified cryptographic primitives shared by the host library and the virtual card.

Every function here is pure (no state, no I/O, no randomness) and checked byte for byte against the
public vectors of ``reference/card-protocols.md`` §3-§6 (tests/cards/test_crypto.py). The
virtual card (``cardsim``) imports this module on purpose: it shares the *primitives* and implements
the card side (state, counters, access rules) on its own, so host and card cannot share a logic
mistake. A key may be given as its bytes or prepared once (``AesKey``, for the many operations
of a secure-messaging session): the results are the same, only the set-up is not repeated.

Public names are a contract with ``cardsim``: add, never rename.
"""

from __future__ import annotations

import hmac
import zlib
from typing import NamedTuple

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from cards.errors import CryptoError, PaddingError

__all__ = [
    "BLOCK",
    "SCP03_CARD_CRYPTOGRAM",
    "SCP03_DIVERSIFY_DEK",
    "SCP03_DIVERSIFY_ENC",
    "SCP03_DIVERSIFY_MAC",
    "SCP03_HOST_CRYPTOGRAM",
    "SCP03_S_ENC",
    "SCP03_S_MAC",
    "SCP03_S_RMAC",
    "UNBLOCK_CHALLENGE_LENGTH",
    "UNBLOCK_KDF_CONSTANT",
    "UNBLOCK_RESPONSE_LENGTH",
    "UNBLOCK_RESPONSE_TAG",
    "UNBLOCK_SERIAL_LENGTH",
    "AesKey",
    "Ev2SessionKeys",
    "Scp03SessionKeys",
    "aes_cbc_decrypt",
    "aes_cbc_encrypt",
    "aes_cmac",
    "aes_ecb_decrypt",
    "aes_ecb_encrypt",
    "an10922_diversify_aes128",
    "an10922_input",
    "cmac_subkeys",
    "constant_time_equal",
    "desfire_crc32",
    "ev2_change_key_cryptogram",
    "ev2_command_iv",
    "ev2_command_mac",
    "ev2_decrypt",
    "ev2_encrypt",
    "ev2_mac",
    "ev2_response_iv",
    "ev2_response_mac",
    "ev2_session_keys",
    "ev2_sv",
    "ev2_truncate_mac",
    "pad_iso9797_m2",
    "rotate_left",
    "scp03_c_mac",
    "scp03_card_cryptogram",
    "scp03_command_iv",
    "scp03_cryptogram",
    "scp03_decrypt_command_data",
    "scp03_decrypt_response_data",
    "scp03_diversify_key",
    "scp03_encrypt_command_data",
    "scp03_encrypt_response_data",
    "scp03_host_cryptogram",
    "scp03_kdf",
    "scp03_r_mac",
    "scp03_response_iv",
    "scp03_session_keys",
    "unblock_admin_key",
    "unblock_response",
    "unpad_iso9797_m2",
    "xor",
]

BLOCK = 16
"""AES block size in bytes."""

_AES_KEY_LENGTHS = (16, 24, 32)


# --------------------------------------------------------------------------------------------
# AES, CMAC, padding
# --------------------------------------------------------------------------------------------


def _check_key(key: bytes) -> None:
    if len(key) not in _AES_KEY_LENGTHS:
        raise CryptoError(f"AES key must be 16, 24 or 32 bytes, got {len(key)}")


def _check_blocks(data: bytes, what: str) -> None:
    if len(data) % BLOCK:
        raise CryptoError(f"{what} must be a multiple of 16 bytes, got {len(data)}")


def xor(a: bytes, b: bytes) -> bytes:
    """XOR two byte strings of equal length."""
    if len(a) != len(b):
        raise CryptoError(f"xor of unequal lengths {len(a)} and {len(b)}")
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two MACs or cryptograms without leaking the position of the first difference."""
    return hmac.compare_digest(a, b)


class AesKey:
    """An AES key prepared once for the many operations of a secure-messaging session: its
    cipher object (key checked once), ECB and CBC contexts kept open and a CMAC context copied
    for each MAC (no cipher set up per call: issue 12), each made on its first use (a MAC key
    needs only the CMAC). The functions below take it wherever they take a key; results are
    byte for byte those of the bare key (tests/cards/test_crypto.py).

    The kept contexts make it single-threaded, like the session that owns it.
    """

    __slots__ = ("_algorithm", "_cbc", "_cbc_last", "_cmac", "_ecb", "_ecb_dec")

    def __init__(self, key: bytes) -> None:
        _check_key(key)
        self._algorithm = algorithms.AES(key)
        self._ecb: CipherContext | None = None
        self._ecb_dec: CipherContext | None = None
        # One CBC encryptor for every message: its chaining value is the last ciphertext block it
        # gave (``_cbc_last``); a message under another IV starts with its first block XORed
        # with that block and the IV, which is exactly CBC under the IV (see cbc_encrypt).
        self._cbc: CipherContext | None = None
        self._cbc_last = 0
        self._cmac: CMAC | None = None

    def __repr__(self) -> str:
        return "AesKey(<hidden>)"

    def ecb_encrypt(self, data: bytes) -> bytes:
        _check_blocks(data, "ECB input")
        if self._ecb is None:
            # ECB has no chaining: whole blocks in, the same number out, nothing held back.
            self._ecb = Cipher(self._algorithm, modes.ECB()).encryptor()  # noqa: S305 - IVs, KDF
        return self._ecb.update(data)

    def cbc_encrypt(self, iv: bytes, data: bytes) -> bytes:
        _check_blocks(data, "CBC input")
        if len(iv) != BLOCK:
            raise CryptoError(f"IV must be 16 bytes, got {len(iv)}")
        if not data:
            return b""
        if self._cbc is None:
            self._cbc = Cipher(self._algorithm, modes.CBC(bytes(BLOCK))).encryptor()
        # The open context computes E(chain XOR P1); with P1' = P1 XOR IV XOR chain that is
        # E(IV XOR P1), the first block of CBC under IV; the following blocks chain as usual.
        first = int.from_bytes(data[:BLOCK], "big") ^ int.from_bytes(iv, "big") ^ self._cbc_last
        out = self._cbc.update(first.to_bytes(BLOCK, "big") + data[BLOCK:])
        self._cbc_last = int.from_bytes(out[-BLOCK:], "big")
        return out

    def cbc_decrypt(self, iv: bytes, data: bytes) -> bytes:
        _check_blocks(data, "CBC input")
        if len(iv) != BLOCK:
            raise CryptoError(f"IV must be 16 bytes, got {len(iv)}")
        if not data:
            return b""
        if self._ecb_dec is None:
            self._ecb_dec = Cipher(self._algorithm, modes.ECB()).decryptor()  # noqa: S305 - CBC
        # P_i = D(C_i) XOR C_(i-1) with C_0 = IV: every block deciphered at once, then one XOR.
        deciphered = int.from_bytes(self._ecb_dec.update(data), "big")
        previous = int.from_bytes(iv + data[:-BLOCK], "big")
        return (deciphered ^ previous).to_bytes(len(data), "big")

    def cmac(self, data: bytes) -> bytes:
        if self._cmac is None:
            self._cmac = CMAC(self._algorithm)
        mac = self._cmac.copy()
        mac.update(data)
        return mac.finalize()


Key = bytes | AesKey
"""A key as the functions below take it: its bytes, or prepared once (:class:`AesKey`)."""


def aes_ecb_encrypt(key: Key, data: bytes) -> bytes:
    """AES-ECB encryption of whole blocks (no padding)."""
    if isinstance(key, AesKey):
        return key.ecb_encrypt(data)
    _check_key(key)
    _check_blocks(data, "ECB input")
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - single-block IV/KDF use
    return enc.update(data) + enc.finalize()


def aes_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    """AES-ECB decryption of whole blocks (no padding)."""
    _check_key(key)
    _check_blocks(data, "ECB input")
    dec = Cipher(algorithms.AES(key), modes.ECB()).decryptor()  # noqa: S305 - single-block use
    return dec.update(data) + dec.finalize()


def aes_cbc_encrypt(key: Key, iv: bytes, data: bytes) -> bytes:
    """AES-CBC encryption of whole blocks (no padding)."""
    if isinstance(key, AesKey):
        return key.cbc_encrypt(iv, data)
    _check_key(key)
    _check_blocks(data, "CBC input")
    if len(iv) != BLOCK:
        raise CryptoError(f"IV must be 16 bytes, got {len(iv)}")
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def aes_cbc_decrypt(key: Key, iv: bytes, data: bytes) -> bytes:
    """AES-CBC decryption of whole blocks (no padding)."""
    if isinstance(key, AesKey):
        return key.cbc_decrypt(iv, data)
    _check_key(key)
    _check_blocks(data, "CBC input")
    if len(iv) != BLOCK:
        raise CryptoError(f"IV must be 16 bytes, got {len(iv)}")
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def aes_cmac(key: Key, data: bytes) -> bytes:
    """AES-CMAC (NIST SP 800-38B, RFC 4493), full 16 bytes."""
    if isinstance(key, AesKey):
        return key.cmac(data)
    _check_key(key)
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def _shift_left_1(block: bytes) -> bytes:
    value = (int.from_bytes(block, "big") << 1) & ((1 << 128) - 1)
    return value.to_bytes(BLOCK, "big")


def cmac_subkeys(key: bytes) -> tuple[bytes, bytes]:
    """The CMAC subkeys (K1, K2) of an AES key (SP 800-38B §6.1)."""
    l_block = aes_ecb_encrypt(key, bytes(BLOCK))
    k1 = _shift_left_1(l_block)
    if l_block[0] & 0x80:
        k1 = k1[:-1] + bytes([k1[-1] ^ 0x87])
    k2 = _shift_left_1(k1)
    if k1[0] & 0x80:
        k2 = k2[:-1] + bytes([k2[-1] ^ 0x87])
    return k1, k2


def pad_iso9797_m2(data: bytes, block_size: int = BLOCK) -> bytes:
    """ISO 9797-1 method 2 padding: ``80`` then ``00`` up to a block multiple (always added)."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % block_size)


def unpad_iso9797_m2(data: bytes, block_size: int = BLOCK) -> bytes:
    """Remove ISO 9797-1 method 2 padding; raise PaddingError if it is absent or malformed."""
    if not data or len(data) % block_size:
        raise PaddingError(f"padded data must be a non-empty multiple of {block_size} bytes")
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80 or len(data) - len(stripped) >= block_size:
        raise PaddingError("ISO 9797-1 method 2 padding not found")
    return stripped[:-1]


# --------------------------------------------------------------------------------------------
# GlobalPlatform SCP03 (GP Card Specification v2.3 Amendment D)
# --------------------------------------------------------------------------------------------

SCP03_CARD_CRYPTOGRAM = 0x00
SCP03_HOST_CRYPTOGRAM = 0x01
SCP03_S_ENC = 0x04
SCP03_S_MAC = 0x06
SCP03_S_RMAC = 0x07

SCP03_DIVERSIFY_ENC = 0x01
SCP03_DIVERSIFY_MAC = 0x02
SCP03_DIVERSIFY_DEK = 0x03


class Scp03SessionKeys(NamedTuple):
    """The three SCP03 session keys."""

    s_enc: bytes
    s_mac: bytes
    s_rmac: bytes

    def __repr__(self) -> str:
        return "Scp03SessionKeys(<3 keys hidden>)"


def scp03_kdf(key: bytes, constant: int, context: bytes, length_bits: int) -> bytes:
    """SP 800-108 counter-mode KDF with AES-CMAC as fixed by GP Amendment D §6.2.2."""
    if length_bits <= 0 or length_bits % 8 or length_bits > 0xFFFF:
        raise CryptoError(f"KDF output length {length_bits} bits is not a positive byte multiple")
    label = bytes(11) + bytes([constant]) + b"\x00" + length_bits.to_bytes(2, "big")
    out = b""
    counter = 1
    while len(out) * 8 < length_bits:
        out += aes_cmac(key, label + bytes([counter]) + context)
        counter += 1
    return out[: length_bits // 8]


def scp03_session_keys(
    key_enc: bytes, key_mac: bytes, host_challenge: bytes, card_challenge: bytes
) -> Scp03SessionKeys:
    """S-ENC from Key-ENC, S-MAC and S-RMAC from Key-MAC, each as long as the static keys."""
    if len(host_challenge) != 8 or len(card_challenge) != 8:
        raise CryptoError("SCP03 challenges must be 8 bytes each")
    context = host_challenge + card_challenge
    bits = len(key_enc) * 8
    return Scp03SessionKeys(
        s_enc=scp03_kdf(key_enc, SCP03_S_ENC, context, bits),
        s_mac=scp03_kdf(key_mac, SCP03_S_MAC, context, len(key_mac) * 8),
        s_rmac=scp03_kdf(key_mac, SCP03_S_RMAC, context, len(key_mac) * 8),
    )


def scp03_cryptogram(
    s_mac: bytes, constant: int, host_challenge: bytes, card_challenge: bytes
) -> bytes:
    """An 8-byte SCP03 authentication cryptogram (card ``00`` or host ``01``) from S-MAC."""
    return scp03_kdf(s_mac, constant, host_challenge + card_challenge, 64)


def scp03_card_cryptogram(s_mac: bytes, host_challenge: bytes, card_challenge: bytes) -> bytes:
    """The card cryptogram returned by INITIALIZE UPDATE."""
    return scp03_cryptogram(s_mac, SCP03_CARD_CRYPTOGRAM, host_challenge, card_challenge)


def scp03_host_cryptogram(s_mac: bytes, host_challenge: bytes, card_challenge: bytes) -> bytes:
    """The host cryptogram sent in EXTERNAL AUTHENTICATE."""
    return scp03_cryptogram(s_mac, SCP03_HOST_CRYPTOGRAM, host_challenge, card_challenge)


def scp03_c_mac(s_mac: Key, chaining_value: bytes, message: bytes) -> bytes:
    """Full 16-byte C-MAC over chaining value ‖ header (CLA with bit 04, Lc+8) ‖ data.

    The first 8 bytes go on the wire; all 16 are the next chaining value.
    """
    if len(chaining_value) != BLOCK:
        raise CryptoError("SCP03 MAC chaining value must be 16 bytes")
    return aes_cmac(s_mac, chaining_value + message)


def scp03_r_mac(s_rmac: Key, chaining_value: bytes, response_data: bytes, sw: bytes) -> bytes:
    """8-byte R-MAC over the last full C-MAC ‖ response data (ciphertext if R-ENC) ‖ SW1 SW2."""
    if len(chaining_value) != BLOCK or len(sw) != 2:
        raise CryptoError("R-MAC needs the 16-byte C-MAC chaining value and a 2-byte SW")
    return aes_cmac(s_rmac, chaining_value + response_data + sw)[:8]


def scp03_command_iv(s_enc: Key, counter: int) -> bytes:
    """C-ENC IV: AES(S-ENC, encryption counter as 16-byte big-endian)."""
    return aes_ecb_encrypt(s_enc, counter.to_bytes(BLOCK, "big"))


def scp03_response_iv(s_enc: Key, counter: int) -> bytes:
    """R-ENC IV: AES(S-ENC, ``80`` ‖ encryption counter in 15 bytes big-endian)."""
    return aes_ecb_encrypt(s_enc, b"\x80" + counter.to_bytes(BLOCK - 1, "big"))


def scp03_encrypt_command_data(s_enc: Key, counter: int, data: bytes) -> bytes:
    """C-ENC of command data (pad ``80 00…`` then AES-CBC); empty data stays empty."""
    if not data:
        return b""
    return aes_cbc_encrypt(s_enc, scp03_command_iv(s_enc, counter), pad_iso9797_m2(data))


def scp03_decrypt_command_data(s_enc: Key, counter: int, data: bytes) -> bytes:
    """Card side of C-ENC: decrypt and unpad command data (PaddingError if malformed)."""
    if not data:
        return b""
    return unpad_iso9797_m2(aes_cbc_decrypt(s_enc, scp03_command_iv(s_enc, counter), data))


def scp03_encrypt_response_data(s_enc: Key, counter: int, data: bytes) -> bytes:
    """Card side of R-ENC: pad and encrypt response data; empty data stays empty."""
    if not data:
        return b""
    return aes_cbc_encrypt(s_enc, scp03_response_iv(s_enc, counter), pad_iso9797_m2(data))


def scp03_decrypt_response_data(s_enc: Key, counter: int, data: bytes) -> bytes:
    """Host side of R-ENC: decrypt and unpad response data (PaddingError if malformed)."""
    if not data:
        return b""
    return unpad_iso9797_m2(aes_cbc_decrypt(s_enc, scp03_response_iv(s_enc, counter), data))


def scp03_diversify_key(master: bytes, kdd: bytes, key_type: int, length: int = 32) -> bytes:
    """Per-card static key: ``CMAC(master, i ‖ 00 00 00 ‖ key_type ‖ 00 ‖ KDD)`` for i = 1, 2….

    ``key_type`` is SCP03_DIVERSIFY_ENC (01, the published vector), _MAC (02) or _DEK (03).
    """
    if length not in _AES_KEY_LENGTHS:
        raise CryptoError(f"diversified key length {length} is not an AES key length")
    out = b""
    counter = 1
    while len(out) < length:
        out += aes_cmac(master, bytes([counter, 0, 0, 0, key_type, 0]) + kdd)
        counter += 1
    return out[:length]


# --------------------------------------------------------------------------------------------
# MIFARE DESFire EV2 secure messaging (AES-128)
# --------------------------------------------------------------------------------------------


class Ev2SessionKeys(NamedTuple):
    """DESFire EV2 session keys after AuthenticateEV2First/NonFirst."""

    enc: bytes
    mac: bytes

    def __repr__(self) -> str:
        return "Ev2SessionKeys(<2 keys hidden>)"


def rotate_left(data: bytes, n: int = 1) -> bytes:
    """Rotate a byte string left by ``n`` bytes (``RndB<<<1``)."""
    if not data:
        return data
    n %= len(data)
    return data[n:] + data[:n]


def ev2_sv(prefix: bytes, rnd_a: bytes, rnd_b: bytes) -> bytes:
    """SV1 (prefix ``A5 5A``) or SV2 (``5A A5``) session vector of AN12196."""
    if len(rnd_a) != BLOCK or len(rnd_b) != BLOCK or len(prefix) != 2:
        raise CryptoError("EV2 session vector needs 16-byte RndA and RndB and a 2-byte prefix")
    return (
        prefix
        + b"\x00\x01\x00\x80"
        + rnd_a[0:2]
        + xor(rnd_a[2:8], rnd_b[0:6])
        + rnd_b[6:16]
        + rnd_a[8:16]
    )


def ev2_session_keys(key: bytes, rnd_a: bytes, rnd_b: bytes) -> Ev2SessionKeys:
    """SesAuthENCKey = CMAC(K, SV1), SesAuthMACKey = CMAC(K, SV2)."""
    return Ev2SessionKeys(
        enc=aes_cmac(key, ev2_sv(b"\xa5\x5a", rnd_a, rnd_b)),
        mac=aes_cmac(key, ev2_sv(b"\x5a\xa5", rnd_a, rnd_b)),
    )


def ev2_truncate_mac(mac: bytes) -> bytes:
    """MACt: the "even-numbered" bytes of a 16-byte CMAC, i.e. indices 1, 3, …, 15."""
    if len(mac) != BLOCK:
        raise CryptoError("EV2 MAC truncation needs a 16-byte CMAC")
    return mac[1::2]


def ev2_mac(mac_key: Key, message: bytes) -> bytes:
    """Truncated 8-byte EV2 MAC of a message."""
    return ev2_truncate_mac(aes_cmac(mac_key, message))


def _ctr(cmd_ctr: int) -> bytes:
    if not 0 <= cmd_ctr <= 0xFFFF:
        raise CryptoError(f"EV2 command counter {cmd_ctr} out of 16-bit range")
    return cmd_ctr.to_bytes(2, "little")


def _check_ti(ti: bytes) -> None:
    if len(ti) != 4:
        raise CryptoError("EV2 transaction identifier must be 4 bytes")


def ev2_command_mac(
    mac_key: Key, cmd: int, cmd_ctr: int, ti: bytes, header_and_data: bytes
) -> bytes:
    """Command MAC: MACt(CMAC(SesAuthMACKey, Cmd ‖ CmdCtr(LE) ‖ TI ‖ header ‖ data))."""
    _check_ti(ti)
    return ev2_mac(mac_key, bytes([cmd]) + _ctr(cmd_ctr) + ti + header_and_data)


def ev2_response_mac(mac_key: Key, status: int, cmd_ctr: int, ti: bytes, data: bytes) -> bytes:
    """Response MAC: MACt(CMAC(SesAuthMACKey, status ‖ CmdCtr ‖ TI ‖ data)); pass CmdCtr+1."""
    _check_ti(ti)
    return ev2_mac(mac_key, bytes([status]) + _ctr(cmd_ctr) + ti + data)


def ev2_command_iv(enc_key: Key, ti: bytes, cmd_ctr: int) -> bytes:
    """IVc = AES-ECB(SesAuthENCKey, ``A5 5A`` ‖ TI ‖ CmdCtr ‖ 00x8)."""
    _check_ti(ti)
    return aes_ecb_encrypt(enc_key, b"\xa5\x5a" + ti + _ctr(cmd_ctr) + bytes(8))


def ev2_response_iv(enc_key: Key, ti: bytes, cmd_ctr: int) -> bytes:
    """IVr = AES-ECB(SesAuthENCKey, ``5A A5`` ‖ TI ‖ CmdCtr ‖ 00x8); pass CmdCtr+1."""
    _check_ti(ti)
    return aes_ecb_encrypt(enc_key, b"\x5a\xa5" + ti + _ctr(cmd_ctr) + bytes(8))


def ev2_encrypt(enc_key: Key, iv: bytes, data: bytes) -> bytes:
    """FULL-mode encryption: pad ``80 00…`` (always added) then AES-CBC."""
    return aes_cbc_encrypt(enc_key, iv, pad_iso9797_m2(data))


def ev2_decrypt(enc_key: Key, iv: bytes, data: bytes) -> bytes:
    """FULL-mode decryption: AES-CBC then remove the padding (PaddingError if malformed)."""
    return unpad_iso9797_m2(aes_cbc_decrypt(enc_key, iv, data))


def desfire_crc32(data: bytes) -> bytes:
    """DESFire CRC32: IEEE polynomial without final XOR, little-endian 4 bytes."""
    return ((zlib.crc32(data) ^ 0xFFFFFFFF) & 0xFFFFFFFF).to_bytes(4, "little")


def ev2_change_key_cryptogram(new_key: bytes, key_version: int, old_key: bytes | None) -> bytes:
    """ChangeKey plaintext (unpadded): ``New ‖ Ver`` (same key) or ``New⊕Old ‖ Ver ‖ CRC(New)``."""
    if len(new_key) != BLOCK:
        raise CryptoError("DESFire AES keys are 16 bytes")
    if old_key is None:
        return new_key + bytes([key_version])
    return xor(new_key, old_key) + bytes([key_version]) + desfire_crc32(new_key)


# --------------------------------------------------------------------------------------------
# NXP AN10922 AES-128 key diversification
# --------------------------------------------------------------------------------------------


def an10922_input(uid: bytes, aid: bytes, system_identifier: bytes) -> bytes:
    """Diversification input M = UID ‖ AID ‖ system identifier (M at most 31 bytes)."""
    m = uid + aid + system_identifier
    if not 1 <= len(m) <= 31:
        raise CryptoError(f"AN10922 diversification input must be 1..31 bytes, got {len(m)}")
    return m


def an10922_diversify_aes128(master: bytes, m: bytes) -> bytes:
    """AN10922 §2.2 AES-128 diversification: CMAC(master, 01 ‖ M) with explicit 32-byte padding."""
    if len(master) != BLOCK:
        raise CryptoError("AN10922 AES-128 diversification needs a 16-byte master key")
    if not 1 <= len(m) <= 31:
        raise CryptoError(f"AN10922 diversification input must be 1..31 bytes, got {len(m)}")
    d = b"\x01" + m
    k1, k2 = cmac_subkeys(master)
    if len(d) == 32:
        block = d[:16] + xor(d[16:], k1)
    else:
        padded = d + b"\x80" + bytes(31 - len(d))
        block = padded[:16] + xor(padded[16:], k2)
    return aes_cbc_encrypt(master, bytes(BLOCK), block)[16:]


# --------------------------------------------------------------------------------------------
# Offline PIN unblock (docs/offline-unblock.md)
# --------------------------------------------------------------------------------------------

UNBLOCK_KDF_CONSTANT = 0x41
"""SP 800-108 derivation constant of the admin key (distinct from every SCP03 constant)."""
UNBLOCK_RESPONSE_TAG = b"CPS-UNBLOCK"
"""Domain-separation prefix of the unblock response MAC input."""
UNBLOCK_CHALLENGE_LENGTH = 8
UNBLOCK_RESPONSE_LENGTH = 8
UNBLOCK_SERIAL_LENGTH = 10
"""The card serial is the 10-byte content of EF.SN.ICC: ``80 25 00 00 01`` ‖ 10 digits in BCD."""


def _check_unblock(serial: bytes, key_version: int) -> None:
    if len(serial) != UNBLOCK_SERIAL_LENGTH:
        raise CryptoError(f"card serial must be {UNBLOCK_SERIAL_LENGTH} bytes, got {len(serial)}")
    if not 0 <= key_version <= 0xFF:
        raise CryptoError(f"admin key version {key_version} is not one byte")


def unblock_admin_key(master: bytes, serial: bytes, key_version: int) -> bytes:
    """Per-card AES-128 admin key = SP 800-108 CMAC KDF(master, 41, KV ‖ serial, 128 bits)."""
    _check_unblock(serial, key_version)
    return scp03_kdf(master, UNBLOCK_KDF_CONSTANT, bytes([key_version]) + serial, 128)


def unblock_response(
    admin_key: bytes, serial: bytes, key_version: int, pin_reference: int, challenge: bytes
) -> bytes:
    """8-byte response = CMAC(admin key, "CPS-UNBLOCK" ‖ KV ‖ PIN ref ‖ serial ‖ challenge)[:8]."""
    _check_unblock(serial, key_version)
    if len(admin_key) != BLOCK:
        raise CryptoError("the admin key is AES-128 (16 bytes)")
    if len(challenge) != UNBLOCK_CHALLENGE_LENGTH:
        raise CryptoError(f"unblock challenge must be {UNBLOCK_CHALLENGE_LENGTH} bytes")
    if not 0 <= pin_reference <= 0xFF:
        raise CryptoError("PIN reference is one byte")
    message = UNBLOCK_RESPONSE_TAG + bytes([key_version, pin_reference]) + serial + challenge
    return aes_cmac(admin_key, message)[:UNBLOCK_RESPONSE_LENGTH]
