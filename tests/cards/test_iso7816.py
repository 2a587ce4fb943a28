"""ISO 7816 builders against the command table of card-protocols.md §2, parsers, and IsoCard."""

from __future__ import annotations

import logging

import pytest

from cards import iso7816, tlv
from cards.apdu import CommandApdu, ResponseApdu
from cards.errors import MalformedResponse, StatusWordError, sw_meaning
from cards.iso7816 import FileControl, IsoCard, RsaPublicKey
from cards.transport import FunctionTransport, LoggingTransport, is_sensitive, transmit_apdu

H = bytes.fromhex


@pytest.mark.parametrize(
    ("apdu", "wire"),
    [
        (iso7816.select_aid(H("A0000001510000")), "00A4040007A000000151000000"),
        (iso7816.select_aid(H("A0000001510000"), fci=False), "00A4040C07A0000001510000"),
        (iso7816.select_fid(0x2F00), "00A4000C022F00"),
        (iso7816.select_fid(0x5031, fcp=True), "00A40004025031" + "00"),
        (iso7816.select_path((0x5015, 0xC000)), "00A4080C045015C000"),
        (iso7816.select_path((0x5031,), from_mf=False, fcp=True), "00A4090402503100"),
        (iso7816.read_binary(0x0123, 0x10), "00B0012310"),
        (iso7816.update_binary(0x0100, b"\xaa"), "00D6010001AA"),
        (iso7816.create_file(H("6203830150")), "00E00000056203830150"),
        (iso7816.delete_file(0x5015), "00E40000025015"),
        (iso7816.delete_file(), "00E40000"),
        (iso7816.activate_file(), "00440000"),
        (iso7816.get_challenge(), "0084000008"),
        (iso7816.verify(0x81, b"1234"), "002000810431323334"),
        (iso7816.verify(0x81, None), "00200081"),
        (iso7816.change_reference_data(0x81, b"5678", b"1234"), "00240081083132333435363738"),
        (iso7816.change_reference_data(0x81, b"5678"), "002401810435363738"),
        (
            iso7816.reset_retry_counter(0x81, 0x00, puk=b"11", new_pin=b"22"),
            "002C0081043131" + "3232",
        ),
        (iso7816.reset_retry_counter(0x81, 0x01, puk=b"11"), "002C0181023131"),
        (iso7816.reset_retry_counter(0x81, 0x02, new_pin=b"22"), "002C0281023232"),
        (iso7816.reset_retry_counter(0x81, 0x03), "002C0381"),
        (
            iso7816.reset_retry_counter(0x81, 0x03, puk=b"11", new_pin=b"22"),
            "002C038104" + "31313232",
        ),
        (iso7816.manage_security_environment(0xB6, 0x01, 0x42), "002241B606800142840101"),
        (iso7816.manage_security_environment(0xB8, 0x02), "002241B803840102"),
        (iso7816.manage_security_environment(0xB6, 0x81, p1=0x81), "002281B603840181"),
        (iso7816.pso_compute_digital_signature(b"\x01\x02"), "002A9E9A02010200"),
        (iso7816.pso_decipher(b"\xaa"), "002A80860281AA00"),
        (iso7816.generate_asymmetric_key_pair(0x01, 0x07), "0047000008AC06800107840101" + "00"),
        (
            iso7816.generate_asymmetric_key_pair(0x01, 0x07, ins=0x46),
            "0046000008AC0680010784010100",
        ),
        (iso7816.external_authenticate(0x8A, b"\x01" * 8), "0082008A08" + "01" * 8),
        (iso7816.get_data(0x9F7F), "00CA9F7F00"),
        (iso7816.get_data_ber(H("5FC105")), "00CB3FFF055C035FC10500"),
        (iso7816.put_data(0x0101, b"\x01"), "00DA01010101"),
        (iso7816.put_data_ber(H("5301AA")), "00DB3FFF035301AA"),
        (iso7816.get_response(0x20), "00C0000020"),
        (iso7816.manage_channel_open(), "0070000001"),
        (iso7816.manage_channel_close(1), "00708001"),
    ],
)
def test_builders_match_the_reference_table(apdu: CommandApdu, wire: str) -> None:
    assert apdu.encode() == H(wire)


def test_decipher_of_a_2048_bit_cryptogram_is_extended() -> None:
    apdu = iso7816.pso_decipher(bytes(256))
    assert apdu.is_extended


@pytest.mark.parametrize(
    "build",
    [
        lambda: iso7816.select_aid(b""),
        lambda: iso7816.select_fid(0x10000),
        lambda: iso7816.select_path(()),
        lambda: iso7816.read_binary(0x8000),
        lambda: iso7816.update_binary(0, b""),
        lambda: iso7816.update_binary_chunks(b"x", 0),
        lambda: iso7816.verify(0x81, b""),
        lambda: iso7816.change_reference_data(0x81, b""),
        lambda: iso7816.reset_retry_counter(0x81, 0x00, puk=b"1"),
        lambda: iso7816.reset_retry_counter(0x81, 0x01, puk=b"1", new_pin=b"2"),
        lambda: iso7816.reset_retry_counter(0x81, 0x02, puk=b"1", new_pin=b"2"),
        lambda: iso7816.reset_retry_counter(0x81, 0x04),
        lambda: iso7816.manage_security_environment(0xAA, 1),
        lambda: iso7816.pso_compute_digital_signature(b""),
        lambda: iso7816.pso_decipher(b""),
        lambda: iso7816.generate_asymmetric_key_pair(1, 7, ins=0x48),
        lambda: iso7816.external_authenticate(1, b""),
        lambda: iso7816.get_data(0x10000),
        lambda: iso7816.put_data(0x10000, b""),
        lambda: iso7816.manage_channel_close(0),
    ],
)
def test_builders_refuse_bad_arguments(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


def test_update_binary_chunks_cover_the_data() -> None:
    chunks = iso7816.update_binary_chunks(bytes(range(250)), 100, offset=10)
    assert [(c.p1 << 8 | c.p2, len(c.data)) for c in chunks] == [(10, 100), (110, 100), (210, 50)]


def test_fcp_round_trip_and_fci() -> None:
    control = FileControl(
        fid=0xC000, size=0x800, descriptor=1, df_name=b"AID", lifecycle=5, security=H("43404000")
    )
    assert iso7816.parse_fcp(iso7816.build_fcp(control)) == control
    fci = tlv.encode(0x6F, [tlv.Tlv(0x81, H("0100")), tlv.Tlv(0x83, H("5031"))])
    assert iso7816.parse_fcp(fci) == FileControl(fid=0x5031, size=0x100)
    with pytest.raises(MalformedResponse, match="SELECT: malformed response: expected FCP"):
        iso7816.parse_fcp(tlv.encode(0x70, b""))
    with pytest.raises(MalformedResponse, match="undecodable"):
        iso7816.parse_fcp(H("62"))


def test_public_key_parsing() -> None:
    key = RsaPublicKey((1 << 2047) + 1, 65537)
    assert iso7816.parse_public_key(key.encode_7f49()) == key
    assert key.bits == 2048
    for bad, match in [
        (tlv.encode(0x7F48, b""), "one 7F49"),
        (tlv.encode(0x7F49, [tlv.Tlv(0x81, b"\x01")]), "82 missing"),
        (H("7F49"), "public key template"),
        (RsaPublicKey(4, 65537).encode_7f49(), "implausible"),
    ]:
        with pytest.raises(MalformedResponse, match=match):
            iso7816.parse_public_key(bad)


@pytest.mark.parametrize(
    ("sw", "message"),
    [
        (0x63C2, "VERIFY: wrong PIN, 2 tries left (SW 63C2)"),
        (0x63C1, "VERIFY: wrong PIN, 1 try left (SW 63C1)"),
        (0x6983, "VERIFY: PIN blocked (SW 6983)"),
        (0x6984, "VERIFY: PIN not set (reference data not usable) (SW 6984)"),
        (0x6A88, "VERIFY: referenced data not found (SW 6A88)"),
    ],
)
def test_verification_errors_are_readable(sw: int, message: str) -> None:
    with pytest.raises(StatusWordError) as info:
        iso7816.check_verification(ResponseApdu(b"", sw), "VERIFY")
    assert str(info.value) == message
    assert iso7816.check_verification(ResponseApdu(b"ok", 0x9000), "VERIFY") == b"ok"


def test_status_word_meanings() -> None:
    assert sw_meaning(0x63C3) == "verification failed, 3 tries left"
    assert sw_meaning(0x6110) == "16 more bytes available"
    assert sw_meaning(0x6C08) == "wrong Le, exact length is 8"
    assert sw_meaning(0x6400) == "unknown status"
    error = StatusWordError("VERIFY", 0x63C2)
    assert error.tries_left == 2
    assert StatusWordError("SELECT", 0x6A82).tries_left is None


class _Card:
    """A tiny ISO card: one EF at 3F00/2F00 of 300 bytes, PIN 1234, T=0-style 61xx answers."""

    def __init__(self) -> None:
        self.content = bytes(range(256)) + bytes(44)
        self.tries = 3
        self.verified = False
        self.pending = b""
        self.log: list[bytes] = []

    def __call__(self, raw: bytes) -> bytes:
        self.log.append(raw)
        apdu = CommandApdu.decode(raw)
        if apdu.ins == 0xC0:
            out, self.pending = self.pending[: apdu.le], self.pending[apdu.le or 0 :]
            return out + (bytes([0x61, len(self.pending)]) if self.pending else b"\x90\x00")
        if apdu.ins == 0xA4:
            return b"\x90\x00" if apdu.p1 != 0x04 or apdu.data == b"\xa0\x01" else b"\x6a\x82"
        if apdu.ins == 0xB0:
            offset = apdu.p1 << 8 | apdu.p2
            if offset >= len(self.content):
                return b"\x6b\x00"
            chunk = self.content[offset : offset + (apdu.le or 256)]
            return chunk + (b"\x62\x82" if len(chunk) < (apdu.le or 256) else b"\x90\x00")
        if apdu.ins == 0x20:
            if self.tries == 0:
                return b"\x69\x83"
            if not apdu.data:
                return b"\x90\x00" if self.verified else bytes([0x63, 0xC0 | self.tries])
            if apdu.data == b"1234":
                self.verified, self.tries = True, 3
                return b"\x90\x00"
            self.tries -= 1
            return bytes([0x63, 0xC0 | self.tries]) if self.tries else b"\x69\x83"
        if apdu.ins == 0x22:
            return b"\x90\x00"
        if apdu.ins == 0x2A:
            self.pending = bytes(range(200)) + bytes(56)
            return b"\x61\x00"
        if apdu.ins == 0x84:
            return bytes(apdu.le or 0) + b"\x90\x00"
        return b"\x6d\x00"


def test_iso_card_client() -> None:
    fake = _Card()
    card = IsoCard(FunctionTransport(fake), channel=1)
    card.select_aid(b"\xa0\x01")
    with pytest.raises(StatusWordError, match="SELECT: file not found"):
        card.select_aid(b"\xa0\x02")
    assert card.read_file((0x2F00,), chunk=0x80) == fake.content
    assert fake.log[1][0] == 0x01  # channel 1 in CLA
    assert card.read_binary(0, 4) == bytes(range(4))
    assert card.pin_status(0x81) == 3
    with pytest.raises(StatusWordError, match="VERIFY: wrong PIN, 2 tries left"):
        card.verify(0x81, b"0000")
    card.verify(0x81, b"1234")
    assert card.pin_status(0x81) is None
    signature = card.sign(0x02, b"digest")
    assert signature == bytes(range(200)) + bytes(56)
    assert card.get_challenge() == bytes(8)
    fake.tries = 0
    assert card.pin_status(0x81) == 0
    fake.content = bytes(256)
    assert card.read_file((0x2F00,), chunk=0x80) == bytes(256)


def test_iso_card_edge_cases() -> None:
    def answer(raw: bytes) -> bytes:
        if raw[1] == 0x84:
            return b"\x01\x90\x00"
        if raw[1] == 0x20:
            return b"\x6a\x88"
        return b"\x90\x00"

    card = IsoCard(FunctionTransport(answer))
    with pytest.raises(MalformedResponse, match="GET CHALLENGE"):
        card.get_challenge()
    with pytest.raises(StatusWordError, match="VERIFY"):
        card.pin_status(0x81)


def test_transmit_follows_61xx_and_stops_endless_chains() -> None:
    calls: list[bytes] = []

    def endless(raw: bytes) -> bytes:
        calls.append(raw)
        return b"\x61\x01"

    with pytest.raises(MalformedResponse, match="endless"):
        transmit_apdu(
            FunctionTransport(endless), CommandApdu(0x45, 0xB0, 0, 0, le=1), "READ BINARY"
        )
    assert calls[1][0] == 0x45  # GET RESPONSE stays on channel 9 (further interindustry)
    response = transmit_apdu(
        FunctionTransport(endless), b"\x00\xb0\x00\x00\x01", "READ", get_response=False
    )
    assert response.sw == 0x6101


def test_logging_transport_never_logs_sensitive_data(caplog: pytest.LogCaptureFixture) -> None:
    transport = LoggingTransport(FunctionTransport(lambda raw: b"\x12\x34\x90\x00"))
    with caplog.at_level(logging.DEBUG, logger="cards.apdu"):
        transport.transmit(iso7816.verify(0x81, b"9876").encode())
        transport.transmit(H("90C40000010200"))
        transport.transmit(iso7816.select_fid(0x2F00).encode())
    text = caplog.text
    assert "39383736" not in text
    assert "00200081 [5 bytes redacted]" in text
    assert "[2 bytes redacted] 9000" in text
    assert "00A4000C022F00" in text
    assert "12349000" in text
    assert not is_sensitive(b"\x00")
    assert is_sensitive(H("9071000002000000"))
    assert not is_sensitive(H("905A00000300000000"))
