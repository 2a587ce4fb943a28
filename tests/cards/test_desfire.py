"""cards.desfire host side against the AN12196 vectors of card-protocols.md §4, and its failures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cards import crypto
from cards.apdu import CommandApdu, ResponseApdu
from cards.desfire import (
    CommMode,
    DesfireCommand,
    Ev2Authentication,
    Ev2Session,
    FileSettings,
    access_rights,
    aid_bytes,
    create_application,
    create_std_data_file,
    native,
    native_frames,
    parse_native,
)
from cards.errors import (
    AuthenticationError,
    DesfireStatusError,
    MacError,
    MalformedResponse,
    ProtocolError,
)

H = bytes.fromhex
RND_A = H("B98F4C50CF1C2E084FD150E33992B048")
TI = H("7614281A")
SES = crypto.Ev2SessionKeys(
    enc=H("7A93D6571E4B180FCA6AC90C9A7488D4"), mac=H("FC4AF159B62E549B5812394CAB1918CC")
)


def test_authenticate_ev2_first_vectors() -> None:
    auth = Ev2Authentication(3, bytes(16), rng=lambda n: RND_A)
    assert auth.start().encode() == H("9071000002030000")
    part2 = auth.answer(ResponseApdu.decode(H("B875CEB0E66A6C5CD00898DC371F92D191AF")))
    assert part2.encode() == H(
        "90AF000020FF0306E47DFBC50087C4D8A78E88E62DE1E8BE457AA477C707E2F0874916A8B100"
    )
    session = auth.finish(
        ResponseApdu.decode(
            H("0CC9A8094A8EEA683ECAAC5C7BF20584206D0608D477110FC6B3D5D3F65C3A6A9100")
        )
    )
    assert session.ti == TI
    assert session.cmd_ctr == 0
    assert session.keys == SES
    assert "FC4A" not in repr(session).upper()


def test_write_data_full_vector() -> None:
    session = Ev2Session(SES, ti=TI, key_no=3)
    command = session.write_data(3, 0, H("0102030405060708090A"))
    assert command.frames[0].encode() == H(
        "908D00001F030000000A00006B5E6804909962FC4E3FF5522CF0F8436C0C53315B9C73AA00"
    )
    assert session.finish(command, ResponseApdu.decode(H("C26D236E4A7C046D9100"))) == b""
    assert session.cmd_ctr == 1


def test_change_key_vectors() -> None:
    keys = crypto.Ev2SessionKeys(
        enc=H("4CF3CB41A22583A61E89B158D252FC53"), mac=H("5529860B2FC5FB6154B7F28361D30BF9")
    )
    session = Ev2Session(keys, ti=TI, key_no=0, cmd_ctr=2)
    other = session.change_key(2, H("F3847D627727ED3BC9C4CC050489B966"), 1, bytes(16))
    assert other.frames[0].encode() == H(
        "90C4000029022CF362B7BF4311FF3BE1DAA295E8C68DE09050560D19B9E16C2393AE9CD1FAC7"
        "5D0CE20BCD1D06E600"
    )
    assert session.finish(other, ResponseApdu.decode(H("203BB55D1089D5879100"))) == b""
    same = session.change_key(0, H("5004BF991F408672B1EF00F08F9E8647"), 1)
    assert same.frames[0].encode() == H(
        "90C400002900C0EB4DEEFEDDF0B513A03A95A75491818580503190D4D05053FF75668A01D6FD"
        "A6610234BDED643200"
    )
    assert not session.active
    assert session.finish(same, ResponseApdu(b"", 0x9100)) == b""
    with pytest.raises(ProtocolError, match="ended"):
        session.get_key_version(0)


def test_response_mac_failure_releases_nothing() -> None:
    session = Ev2Session(SES, ti=TI, key_no=3)
    command = session.read_data(1, 0, 16)
    iv = crypto.ev2_response_iv(SES.enc, TI, 1)
    ct = crypto.ev2_encrypt(SES.enc, iv, b"identity")
    mac = crypto.ev2_response_mac(SES.mac, 0, 1, TI, ct)
    assert session.finish(command, ResponseApdu(ct + mac, 0x9100)) == b"identity"
    command = session.read_data(1, 0, 16)
    with pytest.raises(MacError, match="ReadData"):
        session.finish(command, ResponseApdu(ct + mac, 0x9100))  # MAC for the old counter
    assert not session.active


def _session() -> Ev2Session:
    return Ev2Session(SES, ti=TI, key_no=0)


def test_full_response_that_does_not_decrypt_is_malformed() -> None:
    session = _session()
    command = session.get_card_uid()
    junk = bytes(16)
    mac = crypto.ev2_response_mac(SES.mac, 0, 1, TI, junk)
    with pytest.raises(MalformedResponse, match="GetCardUID"):
        session.finish(command, ResponseApdu(junk + mac, 0x9100))


def test_full_response_with_no_data() -> None:
    session = _session()
    command = session.get_card_uid()
    mac = crypto.ev2_response_mac(SES.mac, 0, 1, TI, b"")
    assert session.finish(command, ResponseApdu(mac, 0x9100)) == b""


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (ResponseApdu(b"", 0x91AE), DesfireStatusError),
        (ResponseApdu(b"1234", 0x9100), MacError),
        (ResponseApdu(b"", 0x6A82), MalformedResponse),
    ],
)
def test_bad_responses(response: ResponseApdu, error: type[Exception]) -> None:
    session = _session()
    command = session.get_key_version(1)
    with pytest.raises(error, match="GetKeyVersion"):
        session.finish(command, response)


def test_status_error_names_the_command_and_meaning() -> None:
    with pytest.raises(DesfireStatusError, match="CreateApplication: duplicate"):
        parse_native(ResponseApdu(b"", 0x91DE), "CreateApplication")


def test_authentication_failures() -> None:
    auth = Ev2Authentication(3, bytes(16), rng=lambda n: RND_A)
    with pytest.raises(DesfireStatusError, match="authentication error"):
        auth.answer(ResponseApdu(b"", 0x91AE))
    with pytest.raises(MalformedResponse):
        auth.answer(ResponseApdu(bytes(8), 0x91AF))
    with pytest.raises(ProtocolError):
        auth.finish(ResponseApdu(bytes(32), 0x9100))
    auth.answer(ResponseApdu.decode(H("B875CEB0E66A6C5CD00898DC371F92D191AF")))
    with pytest.raises(MalformedResponse):
        auth.finish(ResponseApdu(bytes(16), 0x9100))
    with pytest.raises(AuthenticationError, match="RndA"):
        auth.finish(ResponseApdu(bytes(32), 0x9100))
    bad_rng = Ev2Authentication(3, bytes(16), rng=lambda n: bytes(3))
    with pytest.raises(ProtocolError):
        bad_rng.answer(ResponseApdu.decode(H("B875CEB0E66A6C5CD00898DC371F92D191AF")))
    with pytest.raises(ValueError, match="AES-128"):
        Ev2Authentication(0, bytes(8))
    with pytest.raises(ValueError, match="NonFirst"):
        Ev2Authentication(0, bytes(16), first=False)


def test_non_first_keeps_ti_and_counter() -> None:
    key = bytes(range(16))
    previous = Ev2Session(SES, ti=TI, key_no=0, cmd_ctr=7)
    rnd_b = bytes(range(16, 32))
    auth = Ev2Authentication(1, key, first=False, previous=previous, rng=lambda n: RND_A)
    assert auth.start().encode() == H("907700000101") + b"\x00"
    enc_b = crypto.aes_cbc_encrypt(key, bytes(16), rnd_b)
    auth.answer(ResponseApdu(enc_b, 0x91AF))
    answer = crypto.aes_cbc_encrypt(key, bytes(16), crypto.rotate_left(RND_A))
    session = auth.finish(ResponseApdu(answer, 0x9100))
    assert (session.ti, session.cmd_ctr, session.key_no) == (TI, 7, 1)
    assert session.keys == crypto.ev2_session_keys(key, RND_A, rnd_b)
    assert "key_no=1" in repr(auth)


def test_builders() -> None:
    assert aid_bytes(0x3042F5) == H("F54230")
    assert access_rights(1, 0, 0, 0) == H("0010")
    assert create_application(0x112233, 0x0B, 0x83) == H("3322110B83")
    assert (
        create_application(0x112233, 0x0B, 0xA3, 0xE110, b"name") == H("3322110BA310E1") + b"name"
    )
    with pytest.raises(ValueError, match="DF name"):
        create_application(1, 0, 0, None, b"x")
    with pytest.raises(ValueError, match="AID"):
        aid_bytes(1 << 24)
    with pytest.raises(ValueError, match="nibble"):
        access_rights(16, 0, 0, 0)
    settings = FileSettings(
        file_no=1, size=64, comm_mode=3, read=1, write=0, read_write=0, change=0, iso_fid=0xE101
    )
    assert create_std_data_file(settings) == H("0101E1030010400000")
    assert native(0x60) == CommandApdu(0x90, 0x60, 0, 0, le=256)
    frames = native_frames(0x8D, bytes(300))
    assert [f.ins for f in frames] == [0x8D, 0xAF]
    assert sum(len(f.data) for f in frames) == 300


def test_plain_and_mac_modes() -> None:
    session = _session()
    plain = session.prepare(0x6F, mode=CommMode.PLAIN)
    assert plain.frames[0].encode() == H("906F000000")
    assert session.finish(plain, ResponseApdu(b"\x01\x02", 0x9100)) == b"\x01\x02"
    mac_cmd = session.create_std_data_file(
        FileSettings(file_no=1, size=32, comm_mode=3, read=1, write=0, read_write=0, change=0)
    )
    assert mac_cmd.cmd_ctr == 1
    assert len(mac_cmd.frames[0].data) == 7 + 8
    assert session.format_picc().cmd == 0xFC
    assert session.set_configuration(0, b"\x01").cmd == 0x5C
    assert session.create_application(create_application(1, 0x0F, 0x83)).cmd == 0xCA
    assert DesfireCommand(0x99, (), 0, CommMode.MAC).command_name == "DESFire command 99"
    with pytest.raises(ValueError, match="current value"):
        session.change_key(1, bytes(16), 1)
    with pytest.raises(ValueError, match="TI"):
        Ev2Session(SES, ti=b"", key_no=0)


@settings(max_examples=60)
@given(
    writes=st.lists(
        st.tuples(st.binary(max_size=200), st.binary(max_size=200)), min_size=1, max_size=4
    ),
    start=st.integers(0, 0xFFF0),
)
def test_full_mode_wrap_unwrap_round_trip(writes: list[tuple[bytes, bytes]], start: int) -> None:
    """Property: the card side recovers each FULL command; the host recovers each FULL answer."""
    session = Ev2Session(SES, ti=TI, key_no=0, cmd_ctr=start)
    for offset, (data, answer) in enumerate(writes):
        ctr = start + offset
        command = session.prepare(
            0x8D, b"\x01" + bytes(6), data, mode=CommMode.FULL, response_mode=CommMode.FULL
        )
        frame = b"".join(f.data for f in command.frames)
        body, mac = frame[:-8], frame[-8:]
        assert mac == crypto.ev2_command_mac(SES.mac, 0x8D, ctr, TI, body)
        if data:  # FULL mode encrypts data only; a command without data carries none
            iv = crypto.ev2_command_iv(SES.enc, TI, ctr)
            assert crypto.ev2_decrypt(SES.enc, iv, body[7:]) == data
        else:
            assert body == b"\x01" + bytes(6)
        ct = crypto.ev2_encrypt(SES.enc, crypto.ev2_response_iv(SES.enc, TI, ctr + 1), answer)
        reply = ct + crypto.ev2_response_mac(SES.mac, 0, ctr + 1, TI, ct)
        assert session.finish(command, ResponseApdu(reply, 0x9100)) == answer
