"""cards.crypto against the public vectors of reference/card-protocols.md §3-§6, byte for byte."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cards import crypto
from cards.errors import CryptoError, PaddingError

H = bytes.fromhex

# --- §3 SCP03 -------------------------------------------------------------------------------
KEY_ENC = H("000102030405060708090A0B0C0D0E0F")
KEY_MAC = H("101112131415161718191A1B1C1D1E1F")


def _mac_wrap(s_mac: crypto.Key, chain: bytes, apdu: bytes) -> tuple[bytes, bytes]:
    """Minimal C-MAC wrap of a short APDU straight from the spec text, for the vector check."""
    header = bytes([apdu[0] | 0x04]) + apdu[1:4]
    body = apdu[4:]
    if not body:
        data, le = b"", b""
    elif len(body) == 1:
        data, le = b"", body
    else:
        lc = body[0]
        data, le = body[1 : 1 + lc], body[1 + lc :]
    mac_input = header + bytes([len(data) + 8]) + data
    full = crypto.scp03_c_mac(s_mac, chain, mac_input)
    return mac_input + full[:8] + le, full


@pytest.mark.parametrize("prepared", [False, True], ids=["bytes", "AesKey"])
def test_scp03_sl11_vectors(prepared: bool) -> None:
    host_challenge = H("b13e5f938fc108c4")
    card_challenge = H("3eb51047495b249f")
    keys = crypto.scp03_session_keys(KEY_ENC, KEY_MAC, host_challenge, card_challenge)
    if prepared:  # the session key prepared once, used for every MAC of the session
        keys = keys._replace(s_mac=crypto.AesKey(keys.s_mac))  # type: ignore[arg-type]
    assert crypto.scp03_card_cryptogram(keys.s_mac, host_challenge, card_challenge) == H(
        "66c484c1d2ef1948"
    )
    host_cryptogram = crypto.scp03_host_cryptogram(keys.s_mac, host_challenge, card_challenge)
    assert host_cryptogram == H("7d5f5826a993ebc8")
    ext_auth, chain = _mac_wrap(keys.s_mac, bytes(16), H("8082110008") + host_cryptogram)
    assert ext_auth == H("8482110010 7d5f5826a993ebc8 9eea24957fa0b3ce")
    expected = [
        ("80E2910006BF3E035C015A00", "84e291000ebf3e035c015a558d036518a2829700"),
        ("80F22002", "84f220020863a63f8959827fb2"),
        ("80ca006600", "84ca006608a0c6a4a74166f7ce00"),
    ]
    for plain, wrapped in expected:
        out, chain = _mac_wrap(keys.s_mac, chain, H(plain))
        assert out == H(wrapped)


def test_scp03_sl03_vectors() -> None:
    host_challenge = H("8e1552d0513c60f3")
    response = H("0000000000000000000030037030760cd2c47c1dd395065fe5ead8a9d7000001")
    card_challenge, card_cryptogram = response[13:21], response[21:29]
    keys = crypto.scp03_session_keys(KEY_ENC, KEY_MAC, host_challenge, card_challenge)
    assert (
        crypto.scp03_card_cryptogram(keys.s_mac, host_challenge, card_challenge) == card_cryptogram
    )
    host_cryptogram = crypto.scp03_host_cryptogram(keys.s_mac, host_challenge, card_challenge)
    ext_auth, chain = _mac_wrap(keys.s_mac, bytes(16), H("8082030008") + host_cryptogram)
    assert ext_auth == H("8482030010fd4721a14d9b07003c451d2f8ae6bb21")
    # The listed command is the 4th of its session: the trace first sent the same three commands
    # as the SL 11 one (C-ENC counters 1-3, each chaining the C-MAC). Only that history reproduces
    # both the ciphertext (counter 4) and the MAC, which confirms "every command increments".
    for counter, plain in enumerate(["80E2910006BF3E035C015A00", "80F22002", "80ca006600"], 1):
        apdu = H(plain)
        data = apdu[5 : 5 + apdu[4]] if len(apdu) > 5 else b""
        ct = crypto.scp03_encrypt_command_data(keys.s_enc, counter, data)
        _, chain = _mac_wrap(keys.s_mac, chain, apdu[:4] + (bytes([len(ct)]) + ct if ct else b""))
    ciphertext = crypto.scp03_encrypt_command_data(keys.s_enc, 4, H("4f0212345c054f9f70c5"))
    out, _ = _mac_wrap(keys.s_mac, chain, H("80F22002") + bytes([len(ciphertext)]) + ciphertext)
    assert out == H("84f22002184e2908bdb48b2315a55482e9e936ca122d6ecfae7d17416e")
    assert crypto.scp03_decrypt_command_data(keys.s_enc, 4, ciphertext) == H("4f0212345c054f9f70c5")


def test_scp03_card_key_diversification_vector() -> None:
    master = H("8C72C72CF908411653018807950D82FBAD947562F0828A0B10B8B9606ABF3BCD")
    kdd = H("D9B1DE5D0362DEDCE4FB")
    assert crypto.scp03_diversify_key(master, kdd, crypto.SCP03_DIVERSIFY_ENC) == H(
        "9AAC5D0B3601F89438A0D9D0B6B256CFB47E6462DFA5228D3420C4AC7C224781"
    )
    assert len(crypto.scp03_diversify_key(master, kdd, crypto.SCP03_DIVERSIFY_MAC, 16)) == 16
    assert len(crypto.scp03_diversify_key(master, kdd, crypto.SCP03_DIVERSIFY_DEK, 24)) == 24
    with pytest.raises(CryptoError):
        crypto.scp03_diversify_key(master, kdd, 1, 20)


def test_scp03_aes256_session_keys_are_256_bits() -> None:
    keys = crypto.scp03_session_keys(bytes(32), bytes(range(32)), bytes(8), bytes(8))
    assert {len(keys.s_enc), len(keys.s_mac), len(keys.s_rmac)} == {32}


def test_scp03_response_encryption_round_trip_and_rmac() -> None:
    s_enc = bytes(range(16))
    ct = crypto.scp03_encrypt_response_data(s_enc, 5, b"hello")
    assert len(ct) == 16
    assert crypto.scp03_decrypt_response_data(s_enc, 5, ct) == b"hello"
    assert crypto.scp03_encrypt_response_data(s_enc, 5, b"") == b""
    assert crypto.scp03_decrypt_response_data(s_enc, 5, b"") == b""
    assert crypto.scp03_encrypt_command_data(s_enc, 5, b"") == b""
    assert crypto.scp03_decrypt_command_data(s_enc, 5, b"") == b""
    assert crypto.scp03_response_iv(s_enc, 1) == crypto.aes_ecb_encrypt(
        s_enc, H("80" + "00" * 14 + "01")
    )
    assert len(crypto.scp03_r_mac(s_enc, bytes(16), b"data", b"\x90\x00")) == 8
    with pytest.raises(CryptoError):
        crypto.scp03_r_mac(s_enc, bytes(8), b"", b"\x90\x00")
    with pytest.raises(CryptoError):
        crypto.scp03_c_mac(s_enc, bytes(8), b"")


@pytest.mark.parametrize("bits", [0, 7, 0x10000])
def test_scp03_kdf_rejects_bad_lengths(bits: int) -> None:
    with pytest.raises(CryptoError):
        crypto.scp03_kdf(bytes(16), 4, b"", bits)


def test_scp03_session_keys_reject_bad_challenges() -> None:
    with pytest.raises(CryptoError):
        crypto.scp03_session_keys(KEY_ENC, KEY_MAC, bytes(7), bytes(8))


# --- §4 DESFire EV2 (AN12196) -----------------------------------------------------------------
ZERO_KEY = bytes(16)
RND_A = H("B98F4C50CF1C2E084FD150E33992B048")
TI = H("7614281A")
SES_ENC = H("7A93D6571E4B180FCA6AC90C9A7488D4")
SES_MAC = H("FC4AF159B62E549B5812394CAB1918CC")


def test_ev2_authenticate_first_vectors() -> None:
    rnd_b = crypto.aes_cbc_decrypt(ZERO_KEY, bytes(16), H("B875CEB0E66A6C5CD00898DC371F92D1"))
    part2 = crypto.aes_cbc_encrypt(ZERO_KEY, bytes(16), RND_A + crypto.rotate_left(rnd_b))
    assert part2 == H("FF0306E47DFBC50087C4D8A78E88E62DE1E8BE457AA477C707E2F0874916A8B1")
    answer = crypto.aes_cbc_decrypt(
        ZERO_KEY, bytes(16), H("0CC9A8094A8EEA683ECAAC5C7BF20584206D0608D477110FC6B3D5D3F65C3A6A")
    )
    assert answer[:4] == TI
    assert answer[4:20] == crypto.rotate_left(RND_A)
    keys = crypto.ev2_session_keys(ZERO_KEY, RND_A, rnd_b)
    assert keys == crypto.Ev2SessionKeys(enc=SES_ENC, mac=SES_MAC)


def test_ev2_write_data_full_vector() -> None:
    iv = crypto.ev2_command_iv(SES_ENC, TI, 0)
    assert iv == H("4C651A64261A90307B6C293F611C7F7B")
    header = H("03 000000 0A0000")
    ct = crypto.ev2_encrypt(SES_ENC, iv, H("0102030405060708090A"))
    assert ct == H("6B5E6804909962FC4E3FF5522CF0F843")
    assert crypto.ev2_command_mac(SES_MAC, 0x8D, 0, TI, header + ct) == H("6C0C53315B9C73AA")
    assert crypto.ev2_response_mac(SES_MAC, 0x00, 1, TI, b"") == H("C26D236E4A7C046D")
    assert crypto.ev2_decrypt(SES_ENC, iv, ct) == H("0102030405060708090A")


def test_ev2_change_key_vectors() -> None:
    enc = H("4CF3CB41A22583A61E89B158D252FC53")
    mac = H("5529860B2FC5FB6154B7F28361D30BF9")
    new = H("F3847D627727ED3BC9C4CC050489B966")
    assert crypto.desfire_crc32(new) == H("789DFADC")
    iv = crypto.ev2_command_iv(enc, TI, 2)
    assert iv == H("307EDE1814707F30CFE603DD6CA62353")
    ct = crypto.ev2_encrypt(enc, iv, crypto.ev2_change_key_cryptogram(new, 1, bytes(16)))
    assert ct == H("2CF362B7BF4311FF3BE1DAA295E8C68DE09050560D19B9E16C2393AE9CD1FAC7")
    assert crypto.ev2_command_mac(mac, 0xC4, 2, TI, b"\x02" + ct) == H("5D0CE20BCD1D06E6")
    assert crypto.ev2_response_mac(mac, 0x00, 3, TI, b"") == H("203BB55D1089D587")

    new0 = H("5004BF991F408672B1EF00F08F9E8647")
    iv3 = crypto.ev2_command_iv(enc, TI, 3)
    ct0 = crypto.ev2_encrypt(enc, iv3, crypto.ev2_change_key_cryptogram(new0, 1, None))
    assert ct0 == H("C0EB4DEEFEDDF0B513A03A95A75491818580503190D4D05053FF75668A01D6FD")
    assert crypto.ev2_command_mac(mac, 0xC4, 3, TI, b"\x00" + ct0) == H("A6610234BDED6432")


def test_ev2_helpers_reject_bad_sizes() -> None:
    with pytest.raises(CryptoError):
        crypto.ev2_truncate_mac(bytes(8))
    with pytest.raises(CryptoError):
        crypto.ev2_command_iv(SES_ENC, bytes(3), 0)
    with pytest.raises(CryptoError):
        crypto.ev2_command_mac(SES_MAC, 0x8D, 0x10000, TI, b"")
    with pytest.raises(CryptoError):
        crypto.ev2_sv(b"\xa5", RND_A, RND_A)
    with pytest.raises(CryptoError):
        crypto.ev2_change_key_cryptogram(bytes(8), 1, None)
    assert crypto.ev2_response_iv(SES_ENC, TI, 1) != crypto.ev2_command_iv(SES_ENC, TI, 1)
    assert crypto.rotate_left(b"") == b""
    assert crypto.rotate_left(b"abc", 4) == b"bca"


# --- §5 AN10922 -------------------------------------------------------------------------------
def test_an10922_vector() -> None:
    master = H("00112233445566778899AABBCCDDEEFF")
    assert crypto.cmac_subkeys(master) == (
        H("FBC9F75C9413C041DFEE452D3F0706D1"),
        H("F793EEB928278083BFDC8A5A7E0E0D25"),
    )
    m = crypto.an10922_input(H("04782E21801D80"), H("3042F5"), H("4E585020416275"))
    assert crypto.an10922_diversify_aes128(master, m) == H("A8DD63A3B89D54B37CA802473FDA9175")


def test_an10922_equals_plain_cmac_when_long_and_differs_when_short() -> None:
    master = bytes(range(16))
    for length in (16, 20, 31):
        m = bytes(range(length))
        assert crypto.an10922_diversify_aes128(master, m) == crypto.aes_cmac(master, b"\x01" + m)
    short = bytes(5)
    assert crypto.an10922_diversify_aes128(master, short) != crypto.aes_cmac(
        master, b"\x01" + short
    )


def test_an10922_rejects_bad_input() -> None:
    with pytest.raises(CryptoError):
        crypto.an10922_diversify_aes128(bytes(32), b"x")
    with pytest.raises(CryptoError):
        crypto.an10922_diversify_aes128(bytes(16), bytes(32))
    with pytest.raises(CryptoError):
        crypto.an10922_input(bytes(7), bytes(3), bytes(22))


@given(st.binary(min_size=16, max_size=16))
def test_cmac_subkeys_match_library_cmac(key: bytes) -> None:
    # An empty message is CMAC(pad(empty) XOR K2): check our subkeys against the library.
    _, k2 = crypto.cmac_subkeys(key)
    assert crypto.aes_ecb_encrypt(key, crypto.xor(H("80" + "00" * 15), k2)) == crypto.aes_cmac(
        key, b""
    )


@given(
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=16, max_size=16),
    st.lists(st.binary(max_size=70), min_size=1, max_size=4),
)
def test_a_prepared_key_gives_what_its_bytes_give(
    key: bytes, iv: bytes, messages: list[bytes]
) -> None:
    prepared = crypto.AesKey(key)
    for message in messages:  # one prepared key, many operations: no state carried over
        blocks = crypto.pad_iso9797_m2(message)
        assert crypto.aes_cmac(prepared, message) == crypto.aes_cmac(key, message)
        assert crypto.aes_ecb_encrypt(prepared, blocks) == crypto.aes_ecb_encrypt(key, blocks)
        assert crypto.aes_cbc_encrypt(prepared, iv, blocks) == crypto.aes_cbc_encrypt(
            key, iv, blocks
        )
        assert crypto.aes_cbc_decrypt(prepared, iv, blocks) == crypto.aes_cbc_decrypt(
            key, iv, blocks
        )
    assert key.hex() not in repr(prepared)
    with pytest.raises(CryptoError):
        crypto.aes_ecb_encrypt(prepared, bytes(15))
    with pytest.raises(CryptoError):
        crypto.AesKey(bytes(15))


def test_a_prepared_key_chains_cbc_across_messages_and_ivs() -> None:
    key = bytes(range(16))
    prepared = crypto.AesKey(key)
    assert crypto.aes_cbc_encrypt(prepared, bytes(16), b"") == b""
    assert crypto.aes_cbc_decrypt(prepared, bytes(16), b"") == b""
    for i in range(1, 5):  # each message under its own IV, as SCP03 and EV2 use them
        iv, data = bytes([i]) * 16, bytes([0x30 + i]) * (16 * i)
        encrypted = crypto.aes_cbc_encrypt(prepared, iv, data)
        assert encrypted == crypto.aes_cbc_encrypt(key, iv, data)
        assert crypto.aes_cbc_decrypt(prepared, iv, encrypted) == data
    with pytest.raises(CryptoError):
        crypto.aes_cbc_encrypt(prepared, bytes(15), bytes(16))
    with pytest.raises(CryptoError):
        crypto.aes_cbc_decrypt(prepared, bytes(16), bytes(15))
    with pytest.raises(CryptoError, match="IV"):
        crypto.aes_cbc_decrypt(prepared, bytes(17), bytes(16))


# --- padding and primitives --------------------------------------------------------------------
@given(st.binary(max_size=100))
def test_iso9797_padding_round_trip(data: bytes) -> None:
    padded = crypto.pad_iso9797_m2(data)
    assert len(padded) % 16 == 0
    assert len(padded) > len(data)
    assert crypto.unpad_iso9797_m2(padded) == data


@pytest.mark.parametrize(
    "bad", [b"", bytes(15), bytes(16), H("01" * 16), H("80" + "00" * 15) + bytes(16)]
)
def test_unpad_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(PaddingError):
        crypto.unpad_iso9797_m2(bad)


def test_primitives_reject_bad_arguments() -> None:
    with pytest.raises(CryptoError):
        crypto.aes_cmac(bytes(15), b"")
    with pytest.raises(CryptoError):
        crypto.aes_ecb_encrypt(bytes(16), bytes(15))
    with pytest.raises(CryptoError):
        crypto.aes_ecb_decrypt(bytes(16), bytes(15))
    with pytest.raises(CryptoError):
        crypto.aes_cbc_encrypt(bytes(16), bytes(8), bytes(16))
    with pytest.raises(CryptoError):
        crypto.aes_cbc_decrypt(bytes(16), bytes(8), bytes(16))
    with pytest.raises(CryptoError):
        crypto.xor(b"a", b"ab")
    assert crypto.aes_ecb_decrypt(bytes(16), crypto.aes_ecb_encrypt(bytes(16), bytes(16))) == bytes(
        16
    )
    assert crypto.constant_time_equal(b"ab", b"ab")
    assert not crypto.constant_time_equal(b"ab", b"ac")
    assert not crypto.constant_time_equal(b"ab", b"abc")


# --- §6 offline unblock (our specification, docs/offline-unblock.md) --------------------------
UNBLOCK_MASTER = H("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
SERIAL = H("80250000010123456789")


def test_unblock_reference_vector() -> None:
    """The worked example of docs/offline-unblock.md, so other implementations can check theirs."""
    admin_key = crypto.unblock_admin_key(UNBLOCK_MASTER, SERIAL, 1)
    assert admin_key == crypto.scp03_kdf(UNBLOCK_MASTER, 0x41, b"\x01" + SERIAL, 128)
    assert admin_key.hex().upper() == UNBLOCK_ADMIN_KEY_V1
    response = crypto.unblock_response(admin_key, SERIAL, 1, 0x81, H("0102030405060708"))
    assert response.hex().upper() == UNBLOCK_RESPONSE_V1


UNBLOCK_ADMIN_KEY_V1 = "9AA7F649A0260D72F39871E04FE427F2"
UNBLOCK_RESPONSE_V1 = "1CBA0C2A33F3EBC1"


def test_unblock_is_bound_to_version_serial_reference_and_challenge() -> None:
    k1 = crypto.unblock_admin_key(UNBLOCK_MASTER, SERIAL, 1)
    assert k1 != crypto.unblock_admin_key(UNBLOCK_MASTER, SERIAL, 2)
    assert k1 != crypto.unblock_admin_key(UNBLOCK_MASTER, H("80250000010123456780"), 1)
    base = crypto.unblock_response(k1, SERIAL, 1, 0x81, bytes(8))
    assert base != crypto.unblock_response(k1, SERIAL, 1, 0x82, bytes(8))
    assert base != crypto.unblock_response(k1, SERIAL, 1, 0x81, bytes(7) + b"\x01")


@pytest.mark.parametrize(
    ("key", "serial", "version", "ref", "challenge"),
    [
        (bytes(16), bytes(9), 1, 0x81, bytes(8)),
        (bytes(16), SERIAL, 256, 0x81, bytes(8)),
        (bytes(32), SERIAL, 1, 0x81, bytes(8)),
        (bytes(16), SERIAL, 1, 0x81, bytes(16)),
        (bytes(16), SERIAL, 1, 0x100, bytes(8)),
    ],
)
def test_unblock_rejects_bad_arguments(
    key: bytes, serial: bytes, version: int, ref: int, challenge: bytes
) -> None:
    with pytest.raises(CryptoError):
        crypto.unblock_response(key, serial, version, ref, challenge)


def test_session_key_reprs_hide_the_keys():
    from cards.crypto import Ev2SessionKeys, Scp03SessionKeys

    key = bytes.fromhex("00112233445566778899aabbccddeeff")
    for keys in (Scp03SessionKeys(key, key, key), Ev2SessionKeys(key, key)):
        assert repr(key) not in repr(keys)
        assert repr(key) not in str(keys)
        assert repr(key) in repr(
            tuple(keys)
        )  # the keys are still there for the code that uses them
