"""cards.scp03 host session against the SCP03 vectors of card-protocols.md §3, and its failures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cards import crypto
from cards.apdu import CommandApdu, ResponseApdu
from cards.errors import (
    AuthenticationError,
    MacError,
    MalformedResponse,
    ProtocolError,
    StatusWordError,
)
from cards.scp03 import (
    InitializeUpdateResponse,
    Scp03Host,
    Scp03StaticKeys,
    SecurityLevel,
    WrappedCommand,
)

H = bytes.fromhex
KEYS = Scp03StaticKeys(
    enc=H("000102030405060708090A0B0C0D0E0F"),
    mac=H("101112131415161718191A1B1C1D1E1F"),
    dek=H("202122232425262728292A2B2C2D2E2F"),
    kvn=0x30,
)
SL11_IU_RESPONSE = H("00000000000000000000 300370 3eb51047495b249f 66c484c1d2ef1948 000002")
OK = ResponseApdu(b"", 0x9000)
SL03_IU_RESPONSE = H("0000000000000000000030037030760cd2c47c1dd395065fe5ead8a9d7000001")


def _host(challenge: str) -> Scp03Host:
    return Scp03Host(KEYS, rng=lambda n: H(challenge))


def _open(host: Scp03Host, iu_response: bytes, level: int) -> CommandApdu:
    host.initialize_update()
    host.process_initialize_update(ResponseApdu(iu_response, 0x9000))
    ext = host.external_authenticate(level)
    host.process_external_authenticate(ResponseApdu(b"", 0x9000))
    return ext


def test_sl11_session_reproduces_the_vectors() -> None:
    host = _host("b13e5f938fc108c4")
    assert host.initialize_update().encode() == H("8050300008 b13e5f938fc108c4 00")
    info = host.process_initialize_update(ResponseApdu(SL11_IU_RESPONSE, 0x9000))
    assert info.sequence_counter == H("000002")
    assert info.i == 0x70
    ext = host.external_authenticate(0x11)
    assert ext.encode() == H("8482110010 7d5f5826a993ebc8 9eea24957fa0b3ce")
    host.process_external_authenticate(ResponseApdu(b"", 0x9000))
    for plain, wrapped in [
        ("80E2910006BF3E035C015A00", "84e291000ebf3e035c015a558d036518a2829700"),
        ("80F22002", "84f220020863a63f8959827fb2"),
        ("80ca006600", "84ca006608a0c6a4a74166f7ce00"),
    ]:
        assert host.wrap(CommandApdu.decode(H(plain))).encode() == H(wrapped)


def test_sl03_session_reproduces_the_vectors() -> None:
    host = _host("8e1552d0513c60f3")
    ext = _open(host, SL03_IU_RESPONSE, 0x03)
    assert ext.encode() == H("8482030010fd4721a14d9b07003c451d2f8ae6bb21")
    # The listed command is the 4th of its trace; the first three are those of the SL 11 trace.
    for plain in ["80E2910006BF3E035C015A00", "80F22002", "80ca006600"]:
        host.wrap(CommandApdu.decode(H(plain)))
    wrapped = host.wrap(CommandApdu.decode(H("80F220020a4f0212345c054f9f70c5")))
    assert wrapped.encode() == H("84f22002184e2908bdb48b2315a55482e9e936ca122d6ecfae7d17416e")
    assert wrapped.counter == 4


class _CardSide:
    """Card-side SM computed straight from cards.crypto, to check unwrap (test double)."""

    def __init__(self, host: Scp03Host, hc: bytes, cc: bytes) -> None:
        self.keys = crypto.scp03_session_keys(KEYS.enc, KEYS.mac, hc, cc)

    def respond(self, c_mac: bytes, counter: int, data: bytes, sw: int, level: int) -> ResponseApdu:
        if level & SecurityLevel.R_ENCRYPTION and data:
            data = crypto.scp03_encrypt_response_data(self.keys.s_enc, counter, data)
        sw_bytes = sw.to_bytes(2, "big")
        return ResponseApdu(data + crypto.scp03_r_mac(self.keys.s_rmac, c_mac, data, sw_bytes), sw)


def _session(level: int) -> tuple[Scp03Host, _CardSide]:
    host = _host("b13e5f938fc108c4")
    _open(host, SL11_IU_RESPONSE, level)
    return host, _CardSide(host, H("b13e5f938fc108c4"), H("3eb51047495b249f"))


@settings(max_examples=60)
@given(
    level=st.sampled_from([0x01, 0x03, 0x11, 0x13, 0x33]),
    channel=st.integers(0, 19),
    commands=st.lists(
        st.tuples(
            st.binary(max_size=300),
            st.binary(max_size=230),
            st.sampled_from([0x9000, 0x6282, 0x63C1]),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_wrap_unwrap_round_trip(
    level: int, channel: int, commands: list[tuple[bytes, bytes, int]]
) -> None:
    """Property: the card side recovers every command; the host recovers every response."""
    host, card = _session(level)
    host.channel = channel
    chain = host._chain
    for counter_offset, (data, answer, sw) in enumerate(commands):
        wrapped = host.wrap(CommandApdu(0x00, 0xD6, 0x00, 0x00, data, 256 if not data else None))
        assert wrapped.counter == counter_offset + 1
        raw = CommandApdu.decode(wrapped.encode())
        assert raw.channel == channel
        # card side: check C-MAC and decrypt
        body, mac = raw.data[:-8], raw.data[-8:]
        mac_input = (
            raw.encode()[: 4 + (3 if raw.is_extended else 1) + len(body)] if raw.data else b""
        )
        full = crypto.scp03_c_mac(card.keys.s_mac, chain, mac_input)
        assert full[:8] == mac
        chain = full
        plain = (
            crypto.scp03_decrypt_command_data(card.keys.s_enc, wrapped.counter, body)
            if level & SecurityLevel.C_DECRYPTION
            else body
        )
        assert plain == data
        response = card.respond(full, wrapped.counter, answer, sw, level)
        out = host.unwrap(wrapped, response)
        if level & SecurityLevel.R_MAC:
            assert out == ResponseApdu(answer, sw)
        else:
            assert out == response


def test_a_command_too_long_to_carry_its_mac_is_refused_before_the_mac() -> None:
    host, _ = _session(0x11)
    chain = host._chain
    with pytest.raises(ValueError, match="65538 bytes exceeds 65535"):
        host.wrap(CommandApdu(0x00, 0xD6, 0x00, 0x00, bytes(65530)))
    assert host._chain == chain  # the next command's MAC still chains on the last one sent


def test_rmac_failure_raises_and_closes_the_session() -> None:
    host, card = _session(0x33)
    wrapped = host.wrap(CommandApdu(0x00, 0xB0, 0, 0, le=16), "READ BINARY")
    good = card.respond(wrapped.c_mac, wrapped.counter, b"secret", 0x9000, 0x33)
    tampered = ResponseApdu(bytes([good.data[0] ^ 1]) + good.data[1:], 0x9000)
    with pytest.raises(MacError, match="READ BINARY"):
        host.unwrap(wrapped, tampered, "READ BINARY")
    with pytest.raises(ProtocolError, match="closed"):
        host.wrap(CommandApdu(0x00, 0xB0, 0, 0, le=16))


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (ResponseApdu(b"1234567", 0x9000), MacError),
        (ResponseApdu(b"", 0x6988), StatusWordError),
        (ResponseApdu(b"data", 0x6A82), MalformedResponse),
    ],
)
def test_bad_secure_responses(response: ResponseApdu, error: type[Exception]) -> None:
    host, _ = _session(0x13)
    wrapped = host.wrap(CommandApdu(0x00, 0xB0, 0, 0, le=16))
    with pytest.raises(error):
        host.unwrap(wrapped, response, "READ BINARY")
    assert host.closed


def test_error_status_without_data_passes_through_for_the_caller() -> None:
    host, _ = _session(0x13)
    wrapped = host.wrap(CommandApdu(0x00, 0xA4, 0, 0x0C, b"\x50\x15"))
    assert host.unwrap(wrapped, ResponseApdu(b"", 0x6A82)).sw == 0x6A82
    assert not host.closed


def test_r_enc_garbage_is_malformed() -> None:
    host, card = _session(0x33)
    wrapped = host.wrap(CommandApdu(0x00, 0xB0, 0, 0, le=16))
    junk = bytes(16)
    response = ResponseApdu(
        junk + crypto.scp03_r_mac(card.keys.s_rmac, wrapped.c_mac, junk, b"\x90\x00"), 0x9000
    )
    with pytest.raises(MalformedResponse):
        host.unwrap(wrapped, response)


def test_wrong_card_cryptogram_is_an_authentication_error() -> None:
    host = _host("b13e5f938fc108c4")
    host.initialize_update()
    bad = bytearray(SL11_IU_RESPONSE)
    bad[25] ^= 1
    with pytest.raises(AuthenticationError, match="INITIALIZE UPDATE: card cryptogram"):
        host.process_initialize_update(ResponseApdu(bytes(bad), 0x9000))


@pytest.mark.parametrize(
    ("data", "sw", "error"),
    [
        (SL11_IU_RESPONSE, 0x6982, StatusWordError),
        (SL11_IU_RESPONSE[:20], 0x9000, MalformedResponse),
        (SL11_IU_RESPONSE[:11] + b"\x02" + SL11_IU_RESPONSE[12:], 0x9000, MalformedResponse),
        (b"\x00" * 10 + b"\x31" + SL11_IU_RESPONSE[11:], 0x9000, AuthenticationError),
    ],
)
def test_bad_initialize_update(data: bytes, sw: int, error: type[Exception]) -> None:
    host = _host("b13e5f938fc108c4")
    host.initialize_update()
    with pytest.raises(error):
        host.process_initialize_update(ResponseApdu(data, sw))


def test_out_of_sequence_use_is_a_protocol_error() -> None:
    host = _host("b13e5f938fc108c4")
    with pytest.raises(ProtocolError):
        host.process_initialize_update(ResponseApdu(SL11_IU_RESPONSE, 0x9000))
    with pytest.raises(ProtocolError):
        host.external_authenticate(0x33)
    with pytest.raises(ProtocolError):
        host.wrap(CommandApdu(0, 0xB0, 0, 0))
    with pytest.raises(ProtocolError):
        host.unwrap(WrappedCommand(CommandApdu(0x84, 0xB0, 0, 0), bytes(16), 1, 0x33), OK)
    bad_rng = Scp03Host(KEYS, rng=lambda n: b"short")
    with pytest.raises(ProtocolError):
        bad_rng.initialize_update()


def test_external_authenticate_refusal_and_bad_level() -> None:
    host = _host("b13e5f938fc108c4")
    host.initialize_update()
    host.process_initialize_update(ResponseApdu(SL11_IU_RESPONSE, 0x9000))
    with pytest.raises(ValueError, match="security level"):
        host.external_authenticate(0x02)
    host.external_authenticate(0x33)
    with pytest.raises(AuthenticationError, match="EXTERNAL AUTHENTICATE"):
        host.process_external_authenticate(ResponseApdu(b"", 0x6300))
    host.external_authenticate(0x33)
    with pytest.raises(MalformedResponse):
        host.process_external_authenticate(ResponseApdu(b"x", 0x9000))


def test_keys_hide_in_repr_and_validate() -> None:
    assert "0001" not in repr(KEYS)
    assert "kvn" in repr(_host("b13e5f938fc108c4"))
    with pytest.raises(ValueError, match="one length"):
        Scp03StaticKeys(enc=bytes(16), mac=bytes(32), dek=bytes(16))
    with pytest.raises(ValueError, match="KVN"):
        Scp03StaticKeys(enc=bytes(16), mac=bytes(16), dek=bytes(16), kvn=0x80)
    master = H("8C72C72CF908411653018807950D82FBAD947562F0828A0B10B8B9606ABF3BCD")
    keys = Scp03StaticKeys.diversify(master, H("D9B1DE5D0362DEDCE4FB"), 0x30, 32)
    assert keys.enc == H("9AAC5D0B3601F89438A0D9D0B6B256CFB47E6462DFA5228D3420C4AC7C224781")
    assert len({keys.enc, keys.mac, keys.dek}) == 3


def test_initialize_update_response_without_counter() -> None:
    info = InitializeUpdateResponse.parse(SL11_IU_RESPONSE[:29])
    assert info.sequence_counter is None
