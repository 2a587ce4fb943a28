"""The DESFire EV2 chip: AN12196 vectors on the card side, and the application life we use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cards import crypto
from cardsim import desfire
from cardsim.card import TEST_TRANSPORT_MASTER, Card, KeyPool
from tests.cardsim.host import Ev2Host

AID = bytes.fromhex("F0C0A1")
ZERO = bytes(16)


def _x(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def _feeder(*chunks: str) -> Iterator[bytes]:
    yield from (_x(c) for c in chunks)


def _vector_chip(*random: str) -> desfire.DesfireChip:
    state = desfire.DesfireState(uid=_x("04DE5F1EACC040"), picc_key=desfire.AesKey(ZERO))
    app = desfire.Application(ks1=0x0F, ks2=0x85, keys=[desfire.AesKey(ZERO) for _ in range(5)])
    app.files[3] = desfire.StdFile(desfire.FULL, 0x3333, 32, bytearray(32))
    state.apps[AID] = app
    chunks = _feeder("00000000", *random)  # power_on draws the random-UID bytes first
    chip = desfire.DesfireChip(state, rng=lambda n: next(chunks)[:n])
    assert chip.transmit(b"\x90\x5a\x00\x00\x03" + AID + b"\x00") == b"\x91\x00"
    return chip


def test_authenticate_ev2_first_matches_an12196() -> None:
    chip = _vector_chip("91517975190dcea6104948efa3085c1b", "7614281A")
    assert chip.transmit(_x("90 71 00 00 02 03 00 00")) == _x(
        "B8 75 CE B0 E6 6A 6C 5C D0 08 98 DC 37 1F 92 D1 91 AF"
    )
    resp = chip.transmit(
        _x("90 AF 00 00 20 FF0306E47DFBC50087C4D8A78E88E62DE1E8BE457AA477C707E2F0874916A8B1 00")
    )
    assert resp == _x("0CC9A8094A8EEA683ECAAC5C7BF20584206D0608D477110FC6B3D5D3F65C3A6A 91 00")
    assert chip.session is not None
    assert chip.session.enc == _x("7A93D6571E4B180FCA6AC90C9A7488D4")
    assert chip.session.mac == _x("FC4AF159B62E549B5812394CAB1918CC")
    # WriteData in FULL mode, CmdCtr 0: the published command and answer.
    resp = chip.transmit(
        _x("90 8D 00 00 1F 03 000000 0A0000 6B5E6804909962FC4E3FF5522CF0F843 6C0C53315B9C73AA 00")
    )
    assert resp == _x("C26D236E4A7C046D 91 00")
    assert chip.state.apps[AID].files[3].data[:10] == _x("0102030405060708090A")


def test_change_key_matches_an12196() -> None:
    chip = _vector_chip()
    chip.session = desfire.Session(
        key_no=0,
        ti=_x("7614281A"),
        enc=_x("4CF3CB41A22583A61E89B158D252FC53"),
        mac=_x("5529860B2FC5FB6154B7F28361D30BF9"),
        ctr=2,
    )
    resp = chip.transmit(
        _x(
            "90C4000029 02 2CF362B7BF4311FF3BE1DAA295E8C68DE09050560D19B9E16C2393AE9CD1FAC7"
            " 5D0CE20BCD1D06E6 00"
        )
    )
    assert resp == _x("203BB55D1089D587 9100")
    key2 = chip.state.apps[AID].keys[2]
    assert (key2.key, key2.version) == (_x("F3847D627727ED3BC9C4CC050489B966"), 1)
    resp = chip.transmit(
        _x(
            "90C4000029 00 C0EB4DEEFEDDF0B513A03A95A75491818580503190D4D05053FF75668A01D6FD"
            " A6610234BDED6432 00"
        )
    )
    assert resp == _x("9100")
    assert chip.state.apps[AID].keys[0].key == _x("5004BF991F408672B1EF00F08F9E8647")
    assert chip.session is None


@pytest.fixture
def card(key_pool: KeyPool) -> Card:
    """The commands below on a card as NXP ships it (PICC key AES zeros, version 0)."""
    return Card.blank("cps4", keygen=key_pool, blank={"factory_default": True})


@pytest.fixture
def host(card: Card) -> Ev2Host:
    assert card.contactless is not None
    return Ev2Host(card.contactless.transmit)


def test_a_vendor_blank_card_has_its_own_diversified_transport_key(key_pool: KeyPool) -> None:
    vendor = Card.blank("cps4", keygen=key_pool)  # the default: the test vendor's batch
    assert vendor.contactless is not None and vendor.desfire_chip is not None
    host = Ev2Host(vendor.contactless.transmit)
    assert host.authenticate(0, ZERO) == desfire.ST_AUTH
    uid = vendor.desfire_chip.state.uid
    m = crypto.an10922_input(uid, bytes(3), b"ANS-CPS4")
    assert host.authenticate(0, crypto.an10922_diversify_aes128(TEST_TRANSPORT_MASTER, m)) == 0
    assert host.mac_cmd(0x64, b"\x00")[0] == b"\x01"  # GetKeyVersion: the batch's version 1
    other = Card.blank("cps4", keygen=key_pool)
    assert other.desfire_chip is not None
    assert other.desfire_chip.state.picc_key.key != vendor.desfire_chip.state.picc_key.key


def test_set_configuration_sets_the_key_new_applications_get(card: Card, host: Ev2Host) -> None:
    initial = bytes(range(0xA0, 0xB0))
    option_01 = initial + bytes(8) + b"\x05"  # libfreefare: key padded to 24 bytes, version
    assert host.cmd(0x5C, b"\x01" + option_01)[1] == desfire.ST_AUTH  # no PICC session
    assert host.authenticate(0, ZERO) == 0
    assert host.mac_cmd(0x5C, b"\x01", option_01[:24], full=True)[1] == desfire.ST_LENGTH
    assert host.authenticate(0, ZERO) == 0
    assert host.mac_cmd(0x5C, b"\x01", option_01, full=True) == (b"", 0)
    assert host.mac_cmd(0xCA, AID + bytes([0x0B, 0x83]))[1] == 0
    assert host.cmd(0x5A, AID) == (b"", 0)
    assert host.authenticate(0, ZERO) == desfire.ST_AUTH  # not the public default any more
    for key_no in range(3):
        assert host.authenticate(key_no, initial) == 0
    assert host.mac_cmd(0x64, b"\x02")[0] == b"\x05"
    # It survives the state file.
    assert card.desfire_chip is not None
    state = desfire.DesfireState.from_json(card.desfire_chip.state.to_json())
    assert (state.default_key.key, state.default_key.version) == (initial, 5)


def test_transport_key_is_all_zeros_and_wrong_keys_fail(host: Ev2Host) -> None:
    assert host.authenticate(0, bytes([1]) * 16) == desfire.ST_AUTH
    assert host.authenticate(5, ZERO) == desfire.ST_NO_SUCH_KEY
    assert host.authenticate(0, ZERO) == 0


def test_application_life(card: Card, host: Ev2Host) -> None:
    assert card.contactless is not None
    assert host.authenticate(0, ZERO) == 0
    free_before = int.from_bytes(host.mac_cmd(0x6E)[0], "little")
    assert host.mac_cmd(0xCA, AID + bytes([0x0B, 0x83]))[1] == 0
    assert host.mac_cmd(0xCA, AID + bytes([0x0B, 0x83]))[1] == desfire.ST_DUPLICATE
    assert host.authenticate(0, ZERO) == 0
    assert int.from_bytes(host.mac_cmd(0x6E)[0], "little") < free_before
    assert host.mac_cmd(0x6A)[0] == AID
    # Into the application: change key 1 with the master key, then files.
    assert host.cmd(0x5A, AID) == (b"", 0)
    assert host.cmd(0x5A, b"\x01\x02\x03")[1] == desfire.ST_APP_NOT_FOUND
    assert host.cmd(0x5A, AID) == (b"", 0)
    assert host.authenticate(0, ZERO) == 0
    k1 = bytes(range(16))
    plain = crypto.ev2_change_key_cryptogram(k1, 0x10, ZERO)
    assert host.mac_cmd(0xC4, b"\x01", plain, full=True)[1] == 0
    assert host.mac_cmd(0x64, b"\x01")[0] == b"\x10"
    # file 1: FULL, read key 1, write key 0; file 2: plain, free read.
    assert (
        host.mac_cmd(
            0xCD,
            bytes([1, 0x03]) + (0x10F0).to_bytes(2, "little") + (64).to_bytes(3, "little"),
        )[1]
        == 0
    )
    assert (
        host.mac_cmd(
            0xCD, bytes([2, 0x00]) + (0xE000).to_bytes(2, "little") + (16).to_bytes(3, "little")
        )[1]
        == 0
    )
    assert host.mac_cmd(0x6F)[0] == b"\x01\x02"
    record = b"810002813839|8025000001/0000012345|2031-06-30"
    header = bytes([1]) + (0).to_bytes(3, "little") + len(record).to_bytes(3, "little")
    assert host.mac_cmd(0x8D, header, record, full=True)[1] == 0
    header2 = bytes([2]) + (0).to_bytes(3, "little") + (4).to_bytes(3, "little")
    assert host.plain_cmd(0x3D, header2 + b"OPEN")[1] == 0
    # Key 0 may not read file 1 (read key 1): permission denied ends the session.
    read1 = bytes([1]) + (0).to_bytes(3, "little") + len(record).to_bytes(3, "little")
    assert host.mac_cmd(0xAD, read1)[1] == desfire.ST_PERMISSION
    assert host.cmd(0xAD, read1)[1] == desfire.ST_AUTH
    assert host.authenticate(1, k1) == 0
    assert host.mac_cmd(0xAD, read1, resp_full=True) == (record, 0)
    # Free file read without any authentication, plain.
    host2 = Ev2Host(card.contactless.transmit)
    assert host2.cmd(0x5A, AID)[1] == 0
    assert host2.cmd(0xBD, bytes([2]) + bytes(3) + (4).to_bytes(3, "little")) == (b"OPEN", 0)
    assert (
        host2.cmd(0xBD, bytes([2]) + bytes(3) + (17).to_bytes(3, "little"))[1]
        == desfire.ST_BOUNDARY
    )
    assert host2.cmd(0xBD, bytes([9]) + bytes(6))[1] == desfire.ST_FILE_NOT_FOUND


def test_bad_mac_is_an_integrity_error(host: Ev2Host) -> None:
    assert host.authenticate(0, ZERO) == 0
    _, st = host.cmd(0x6E, bytes(8))
    assert st == desfire.ST_INTEGRITY
    assert host.cmd(0x51)[1] == desfire.ST_AUTH  # the error ended the session


def test_card_uid_configuration_and_format(card: Card, host: Ev2Host) -> None:
    assert card.contactless is not None
    uid = card.desfire_chip.state.uid if card.desfire_chip else b""
    assert card.contactless.transmit(b"\xff\xca\x00\x00\x00") == uid + b"\x90\x00"
    assert host.authenticate(0, ZERO) == 0
    assert host.mac_cmd(0x51, resp_full=True) == (uid, 0)
    assert host.mac_cmd(0x5C, b"\x00", b"\x01", full=True)[1] == 0
    assert host.mac_cmd(0xFC)[1] == desfire.ST_PERMISSION
    assert host.authenticate(0, ZERO) == 0
    assert host.mac_cmd(0x5C, b"\x00", b"\x02", full=True)[1] == 0
    anticollision = card.contactless.transmit(b"\xff\xca\x00\x00\x00")
    assert anticollision[0] == 0x08 and len(anticollision) == 6


def test_get_version_in_three_frames(host: Ev2Host) -> None:
    first, st = host.cmd(0x60)
    assert (first[0], st) == (0x04, 0xAF)
    assert host.cmd(0xAF)[1] == 0xAF
    third, st = host.cmd(0xAF)
    assert st == 0 and len(third) == 14


@pytest.mark.parametrize(
    ("apdu", "response"),
    [
        ("90FE000000", "911C"),
        ("00A4040000", "6E00"),
        ("905A000001AA00", "917E"),
        ("90AF000000", "911C"),
        ("90BD0000070100000000000000", "919D"),
        ("9071000002AA0000", "9140"),
    ],
)
def test_desfire_status_codes(card: Card, apdu: str, response: str) -> None:
    assert card.contactless is not None
    assert card.contactless.transmit(bytes.fromhex(apdu)) == bytes.fromhex(response)
