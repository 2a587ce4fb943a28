"""BER-TLV and APDU encodings: property round trips and every malformed form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cards import tlv
from cards.apdu import (
    ClassByte,
    CommandApdu,
    ResponseApdu,
    make_cla,
    parse_cla,
    with_channel,
    with_secure_messaging,
)
from cards.errors import MalformedResponse, StatusWordError, TlvError

H = bytes.fromhex

one_byte_tags = st.integers(0x01, 0xFE).filter(lambda t: t & 0x1F != 0x1F)
two_byte_tags = st.builds(
    lambda a, b: a << 8 | b,
    st.integers(0, 0xFF).map(lambda x: x | 0x1F).filter(lambda x: x != 0xFF),
    st.integers(0x1F, 0x7F),
)
three_byte_tags = st.builds(
    lambda a, b, c: a << 16 | b << 8 | c,
    st.sampled_from([0x5F, 0x7F, 0xBF, 0xDF]),
    st.integers(0x81, 0xFF),
    st.integers(0x00, 0x7F),
)
tags = st.one_of(one_byte_tags, two_byte_tags, three_byte_tags)
primitive_tags = tags.filter(lambda t: not tlv.is_constructed(t))
constructed_tags = tags.filter(tlv.is_constructed)

trees = st.recursive(
    st.builds(lambda t, v: ("p", t, v), primitive_tags, st.binary(max_size=300)),
    lambda children: st.builds(
        lambda t, c: ("c", t, c), constructed_tags, st.lists(children, max_size=4)
    ),
    max_leaves=12,
)


def _encode(node: tuple) -> bytes:  # type: ignore[type-arg]
    kind, tag, value = node
    if kind == "p":
        return tlv.encode(tag, value)
    return tlv.encode(tag, b"".join(_encode(child) for child in value))


def _check(node: tuple, decoded: tlv.Tlv) -> None:  # type: ignore[type-arg]
    kind, tag, value = node
    assert decoded.tag == tag
    if kind == "p":
        assert decoded.value == value
    else:
        children = decoded.children()
        assert len(children) == len(value)
        for child, sub in zip(value, children, strict=True):
            _check(child, sub)


@given(st.lists(trees, max_size=4))
def test_tlv_round_trip(nodes: list[tuple]) -> None:  # type: ignore[type-arg]
    raw = b"".join(_encode(n) for n in nodes)
    decoded = tlv.decode(raw)
    assert len(decoded) == len(nodes)
    for node, item in zip(nodes, decoded, strict=True):
        _check(node, item)
        assert item.encode() == _encode(node)


def test_tlv_known_encodings() -> None:
    key = tlv.encode(0x7F49, [tlv.Tlv(0x81, b"\x01" * 256), tlv.Tlv(0x82, H("010001"))])
    assert key[:6] == H("7F4982010981820100"[:12])
    assert tlv.encode_length(0x7F) == b"\x7f"
    assert tlv.encode_length(0x80) == H("8180")
    assert tlv.encode_length(0x1234) == H("821234")
    assert tlv.encode_length(0x123456) == H("83123456")
    parsed = tlv.decode(key)[0]
    assert parsed.find(0x82) == tlv.Tlv(0x82, H("010001"))
    assert parsed.find(0x83) is None
    assert tlv.find_all(parsed.children(), 0x81)[0].value == b"\x01" * 256
    assert tlv.require(parsed.children(), 0x81).constructed is False
    assert tlv.decode(H("00FF8001AA00")) == [tlv.Tlv(0x80, b"\xaa")]


@pytest.mark.parametrize(
    "raw",
    [
        H("5F"),  # truncated tag
        H("5F81"),  # truncated tag
        H("5F818181818101"),  # tag too long
        H("80"),  # missing length
        H("8080"),  # indefinite length
        H("8084000000000000"),  # length of 4 bytes
        H("8082"),  # truncated length
        H("8003AABB"),  # value truncated
    ],
)
def test_tlv_malformed(raw: bytes) -> None:
    with pytest.raises(TlvError):
        tlv.decode(raw)


def test_tlv_bad_arguments() -> None:
    for _ in range(2):  # a refused tag stays refused: only good tags are remembered
        with pytest.raises(TlvError, match="continuation"):
            tlv.encode_tag(0x5F81)
        assert tlv.encode_tag(0x5F20) == H("5F20")
    with pytest.raises(TlvError):
        tlv.encode_tag(-1)
    with pytest.raises(TlvError, match="padding"):
        tlv.encode_tag(0x00)
    with pytest.raises(TlvError, match="followed"):
        tlv.encode_tag(0x8081)
    with pytest.raises(TlvError, match="continuation"):
        tlv.encode_tag(0x5F81)
    with pytest.raises(TlvError):
        tlv.encode_tag(0x1F)
    with pytest.raises(TlvError):
        tlv.encode_length(-1)
    with pytest.raises(TlvError):
        tlv.encode_length(1 << 24)
    with pytest.raises(TlvError, match="primitive"):
        tlv.Tlv(0x80, b"").children()
    with pytest.raises(TlvError, match="missing"):
        tlv.require([], 0x80)
    with pytest.raises(TlvError, match="empty"):
        tlv.decode_one(b"")


# --- APDU ---------------------------------------------------------------------------------------

commands = st.builds(
    CommandApdu,
    cla=st.integers(0, 0xFF),
    ins=st.integers(0, 0xFF),
    p1=st.integers(0, 0xFF),
    p2=st.integers(0, 0xFF),
    data=st.one_of(
        st.binary(max_size=300), st.binary(min_size=250, max_size=70000).map(lambda b: b[:65535])
    ),
    le=st.one_of(st.none(), st.integers(1, 65536)),
    extended=st.booleans(),
)


@given(commands)
def test_command_apdu_round_trip(apdu: CommandApdu) -> None:
    raw = apdu.encode()
    decoded = CommandApdu.decode(raw)
    assert decoded == apdu
    if apdu.data or apdu.le is not None:  # a case 1 APDU has no length field to be extended
        assert decoded.is_extended == apdu.is_extended
    assert bytes(decoded) == raw


@given(st.binary(max_size=300), st.integers(0, 0xFFFF))
def test_response_apdu_round_trip(data: bytes, sw: int) -> None:
    response = ResponseApdu(data, sw)
    assert ResponseApdu.decode(response.encode()) == response
    assert bytes(response)[-2:] == bytes([response.sw1, response.sw2])


def test_apdu_cases_on_the_wire() -> None:
    assert CommandApdu(0, 0x84, 0, 0, le=8).encode() == H("0084000008")
    assert CommandApdu(0, 0xB0, 0, 0, le=256).encode() == H("00B0000000")
    assert CommandApdu(0, 0xB0, 0, 0, le=65536).encode() == H("00B00000000000")
    assert CommandApdu(0, 0xD6, 0, 0, bytes(256)).encode()[:7] == H("00D60000000100")
    assert CommandApdu(0, 0x2A, 0x9E, 0x9A, b"\x01", 512).encode() == H("002A9E9A00000101") + H(
        "0200"
    )
    assert CommandApdu(0, 0x20, 0, 0x81).encode() == H("00200081")
    assert CommandApdu.decode(H("00B0000000")).le == 256


@pytest.mark.parametrize(
    "raw",
    [H("00B000"), H("00D6000002AA"), H("00D60000000002AA"), H("00D600000000")],
)
def test_command_apdu_malformed(raw: bytes) -> None:
    with pytest.raises(ValueError):
        CommandApdu.decode(raw)


@pytest.mark.parametrize("field", ["cla", "ins", "p1", "p2"])
@pytest.mark.parametrize("value", [-1, 0x100])
def test_command_apdu_names_the_header_byte_out_of_range(field: str, value: int) -> None:
    fields = {"cla": 0x80, "ins": 0xCA, "p1": 0x9F, "p2": 0x7F, field: value}
    with pytest.raises(ValueError, match=f"^{field.upper()} {value} is not a byte$"):
        CommandApdu(fields["cla"], fields["ins"], fields["p1"], fields["p2"])
    assert CommandApdu(0x80, 0xCA, 0x9F, 0x7F).header == H("80CA9F7F")


def test_command_apdu_rejects_bad_fields() -> None:
    with pytest.raises(ValueError, match="byte"):
        CommandApdu(0x100, 0, 0, 0)
    with pytest.raises(ValueError, match="65535"):
        CommandApdu(0, 0, 0, 0, bytes(65536))
    with pytest.raises(ValueError, match="Le"):
        CommandApdu(0, 0, 0, 0, le=0)


@given(
    st.binary(min_size=1, max_size=1000),
    st.integers(1, 255),
    st.one_of(st.none(), st.integers(1, 256)),
)
def test_command_chaining_splits_and_keeps_le_on_the_last(
    data: bytes, size: int, le: int | None
) -> None:
    apdu = CommandApdu(0x00, 0xDB, 0x3F, 0xFF, data, le)
    parts = apdu.chain(size)
    assert b"".join(p.data for p in parts) == data
    assert all(p.cla & 0x10 for p in parts[:-1])
    assert not parts[-1].cla & 0x10
    assert parts[-1].le == le
    assert all(p.le is None for p in parts[:-1])


def test_chain_rejects_zero() -> None:
    with pytest.raises(ValueError, match="positive"):
        CommandApdu(0, 0, 0, 0, b"x").chain(0)


@given(st.integers(0, 19), st.booleans(), st.booleans(), st.booleans())
def test_class_byte_round_trip(channel: int, proprietary: bool, sm: bool, chaining: bool) -> None:
    cla = make_cla(channel, proprietary=proprietary, secure_messaging=sm, chaining=chaining)
    assert parse_cla(cla) == ClassByte(channel, proprietary, sm, chaining)
    moved = with_channel(cla, (channel + 5) % 20)
    assert parse_cla(moved).channel == (channel + 5) % 20
    assert parse_cla(with_secure_messaging(cla)).secure_messaging
    assert CommandApdu(cla, 0xA4, 0, 0).on_channel(1).channel == 1


def test_known_class_bytes() -> None:
    assert make_cla(1) == 0x01
    assert with_secure_messaging(0x80) == 0x84
    assert with_secure_messaging(0x81) == 0x85
    assert make_cla(4) == 0x40
    assert make_cla(19, proprietary=True, secure_messaging=True) == 0xEF
    with pytest.raises(ValueError, match="channel"):
        make_cla(20)


def test_response_errors_name_the_command() -> None:
    with pytest.raises(MalformedResponse, match="READ BINARY: malformed response: 1 bytes"):
        ResponseApdu.decode(b"\x90", "READ BINARY")
    with pytest.raises(StatusWordError, match=r"SELECT: file not found \(SW 6A82\)"):
        ResponseApdu(b"", 0x6A82).check("SELECT")
    assert ResponseApdu(b"x", 0x9000).check("SELECT").data == b"x"
