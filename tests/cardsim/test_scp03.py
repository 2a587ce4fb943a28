"""SCP03 on the card side: published vectors, per-card keys from the KDD, personalization rules."""

from __future__ import annotations

import pytest

from cards import crypto
from cardsim import contact
from cardsim.card import Card
from cardsim.fs import Node
from tests.cardsim.conftest import card_keys
from tests.cardsim.host import Scp03Host, split


def _vector_chip(challenge: bytes, counter: int) -> contact.ContactChip:
    state = contact.ContactState(
        serial=bytes(10),
        lifecycle=contact.LC_OP_READY,
        kvn=0x30,
        key_enc=bytes(range(16)),
        key_mac=bytes(range(16, 32)),
        key_dek=bytes(range(32, 48)),
        seq_counter=counter - 1,
        mf=Node(fid=0x3F00, df=True),
        pins={},
    )
    return contact.ContactChip(
        state,
        contact.CPS4_PROFILE,
        rng=lambda n: challenge[:n],
        keygen=lambda: pytest.fail("no keygen"),
    )


def _x(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def test_card_side_agrees_with_published_sl11_vector() -> None:
    chip = _vector_chip(_x("3eb51047495b249f"), 2)
    assert split(chip.transmit(_x("00A4040007A0000001510000 00")))[1] == 0x9000
    resp = chip.transmit(_x("8050300008 b13e5f938fc108c4 00"))
    assert resp == _x("00000000000000000000 300370 3eb51047495b249f 66c484c1d2ef1948 000002 9000")
    assert chip.transmit(_x("8482110010 7d5f5826a993ebc8 9eea24957fa0b3ce")) == _x("9000")
    # The published wrapped commands pass the card's C-MAC check (an unknown INS is not a MAC error).
    assert split(chip.transmit(_x("84e291000ebf3e035c015a558d036518a2829700")))[1] == 0x6D00
    # GET STATUS of applications: none installed (6A88), after a good C-MAC.
    assert split(chip.transmit(_x("84f220020863a63f8959827fb2")))[1] == 0x6A88
    assert split(chip.transmit(_x("84ca006608a0c6a4a74166f7ce00")))[1] == 0x9000


def test_card_side_agrees_with_published_sl03_vector() -> None:
    chip = _vector_chip(_x("30760cd2c47c1dd3"), 1)
    chip.transmit(_x("00A4040007A0000001510000 00"))
    resp = chip.transmit(_x("8050300008 8e1552d0513c60f3 00"))
    assert resp == _x("0000000000000000000030037030760cd2c47c1dd395065fe5ead8a9d7000001 9000")
    assert chip.transmit(_x("8482030010fd4721a14d9b07003c451d2f8ae6bb21")) == _x("9000")
    # The published command is the 4th of its session (see tests/cards/test_crypto.py): replay
    # the three before it from an independent host, then the card must accept the vector bytes.
    host = Scp03Host(chip.transmit, bytes(range(16)), bytes(range(16, 32)), channel=0)
    host.keys = crypto.scp03_session_keys(
        host.key_enc, host.key_mac, _x("8e1552d0513c60f3"), _x("30760cd2c47c1dd3")
    )
    host.chaining = crypto.scp03_c_mac(host.keys.s_mac, bytes(16), _x("8482030010fd4721a14d9b0700"))
    host.level = 0x03
    assert host.send(0x80, 0xE2, 0x91, 0x00, _x("BF3E035C015A"), le=None)[1] == 0x6D00
    assert host.send(0x80, 0xF2, 0x20, 0x02, le=None)[1] == 0x6A88
    assert host.send(0x80, 0xCA, 0x00, 0x66, le=0)[1] == 0x9000
    wrapped = _x("84f22002184e2908bdb48b2315a55482e9e936ca122d6ecfae7d17416e")
    assert split(chip.transmit(wrapped))[1] == 0x6A88


def test_tampered_mac_gives_6988_and_ends_the_session() -> None:
    chip = _vector_chip(_x("3eb51047495b249f"), 2)
    chip.transmit(_x("00A4040007A0000001510000 00"))
    chip.transmit(_x("8050300008 b13e5f938fc108c4 00"))
    chip.transmit(_x("8482110010 7d5f5826a993ebc8 9eea24957fa0b3ce"))
    assert chip.transmit(_x("84f220020863a63f8959827fb3")) == _x("6988")
    assert chip.transmit(_x("84ca006608a0c6a4a74166f7ce00")) == _x("6982")


def test_wrong_host_cryptogram_is_refused() -> None:
    chip = _vector_chip(_x("3eb51047495b249f"), 2)
    chip.transmit(_x("00A4040007A0000001510000 00"))
    chip.transmit(_x("8050300008 b13e5f938fc108c4 00"))
    assert chip.transmit(_x("8482110010 7d5f5826a993ebc9 9eea24957fa0b3ce")) in (
        _x("6988"),
        _x("6300"),
    )


def test_blank_card_keys_are_diversified_from_its_kdd(card: Card) -> None:
    enc, mac, _ = card_keys(card.serial)
    host = Scp03Host(card.transmit, enc, mac)
    assert host.select_isd() == 0x9000
    assert host.open(0x33) == card.serial
    data, sw = host.send(0x80, 0xF2, 0x80, 0x02, bytes.fromhex("4F00"))
    assert (sw == 0x9000 and data[-6:-4] == b"\x9f\x70") or b"\x9f\x70\x01\x01" in data


def test_wrong_issuer_keys_fail_the_card_cryptogram(card: Card) -> None:
    host = Scp03Host(card.transmit, bytes(32), bytes(32))
    host.select_isd()
    with pytest.raises(AssertionError):
        host.open()


FCP_EF = bytes.fromhex("621083020100800200208201018C03034000")


def test_personalization_is_refused_outside_the_secure_channel(card: Card) -> None:
    assert split(card.transmit(bytes.fromhex("00E0000012") + FCP_EF))[1] == 0x6982
    assert split(card.transmit(bytes.fromhex("0047000100")))[1] == 0x6982
    assert split(card.transmit(bytes.fromhex("0024018104") + b"1234"))[1] == 0x6982


def test_personalization_inside_the_channel_then_refused_once_locked(card: Card) -> None:
    enc, mac, _ = card_keys(card.serial)
    host = Scp03Host(card.transmit, enc, mac)
    host.select_isd()
    host.open(0x33)
    assert host.send(0x00, 0xE0, 0, 0, FCP_EF)[1] == 0x9000
    assert host.send(0x00, 0xD6, 0, 0, b"hello")[1] == 0x9000
    assert host.send(0x80, 0xF0, 0x80, contact.LC_SECURED, le=None)[1] == 0x9000
    assert host.send(0x80, 0xF0, 0x80, contact.LC_LOCKED, le=None)[1] == 0x9000
    assert host.send(0x80, 0xF0, 0x80, contact.LC_SECURED, le=None)[1] == 0x6985
    fcp2 = FCP_EF.replace(b"\x83\x02\x01\x00", b"\x83\x02\x01\x01")
    assert host.send(0x00, 0xE0, 0, 0, fcp2)[1] == 0x6985
    # New codes (ADR 0027): the issuer sets PIN and PUK on an issued card, inside the channel only
    # (outside it the same command is refused: test_personalization_is_refused_outside_...).
    assert host.send(0x00, 0x24, 0x01, 0x81, b"1234")[1] == 0x9000
    # Certificate renewal (ADR 0023): GENERATE stays open to the issuer at C-DEC and R-MAC.
    generated = host.send(0x00, 0x47, 0x00, 0x00, bytes.fromhex("AC06800107840103"))[1]
    assert generated == 0x9000 or generated >> 8 == 0x61
    # The file written before the lock still reads back (free read).
    card.transmit(bytes.fromhex("00A4000C020100"))
    assert split(card.transmit(bytes.fromhex("00B0000005"))) == (b"hello", 0x9000)
    # After the lock the secure channel still grants what the file's AC allows (certificate
    # renewal); a plain command still does not.
    host.select_isd()
    host.open(0x03)
    host.send(0x00, 0xA4, 0x00, 0x0C, b"\x01\x00", le=None)
    assert host.send(0x00, 0xD6, 0, 0, b"HELLO", le=None)[1] == 0x9000
    assert host.send(0x00, 0x47, 0x00, 0x00, bytes.fromhex("AC06800107840104"))[1] == 0x6982
    card.transmit(bytes.fromhex("00A4000C020100"))
    assert split(card.transmit(bytes.fromhex("00D6000001") + b"h"))[1] == 0x6982


def test_secrets_need_command_encryption(card: Card) -> None:
    enc, mac, _ = card_keys(card.serial)
    host = Scp03Host(card.transmit, enc, mac)
    host.select_isd()
    host.open(0x01)
    assert host.send(0x00, 0x24, 0x01, 0x81, b"1234", le=None)[1] == 0x6982


def test_error_status_comes_without_data_or_rmac_and_keeps_the_session(card: Card) -> None:
    enc, mac, _ = card_keys(card.serial)
    host = Scp03Host(card.transmit, enc, mac)
    host.select_isd()
    host.open(0x33)
    assert host.send(0x00, 0xE0, 0, 0, FCP_EF)[1] == 0x9000
    host.send(0x00, 0xA4, 0x00, 0x0C, b"\x3f\x00", le=None)
    # CREATE FILE of a file that exists: the bare status word (GP Amendment D §6.2.5).
    wrapped = host.wrap(0x00, 0xE0, 0, 0, FCP_EF)
    assert card.transmit(wrapped) == bytes.fromhex("6A89")
    # The session goes on: the next command's R-MAC chains from its own C-MAC.
    assert host.send(0x00, 0xA4, 0x00, 0x0C, b"\x01\x00", le=None)[1] == 0x9000
    assert host.send(0x00, 0xB0, 0, 0, le=4) == (bytes(4), 0x9000)
    # A warning (62xx, end of file) is protected like 9000: data, R-MAC and R-ENC.
    assert host.send(0x00, 0xB0, 0, 0x1E, le=4) == (bytes(2), 0x6282)


def test_activate_file_closes_once_and_a_repeat_answers_9000(card: Card) -> None:
    enc, mac, _ = card_keys(card.serial)
    host = Scp03Host(card.transmit, enc, mac)
    host.select_isd()
    assert split(card.transmit(bytes.fromhex("0144000000")))[1] == 0x6982  # outside SCP03
    host.open(0x33)
    assert host.send(0x00, 0xE0, 0, 0, FCP_EF)[1] == 0x9000  # the new EF is current
    assert host.send(0x00, 0x44, 0, 0, le=None)[1] == 0x6985  # not on the MF
    host.send(0x00, 0xA4, 0x00, 0x0C, b"\x3f\x00", le=None)
    assert host.send(0x00, 0x44, 0, 0, le=None)[1] == 0x9000
    assert card.contact_chip.state.lifecycle == contact.LC_LOCKED
    card.contact_chip.dirty = False
    assert host.send(0x00, 0x44, 0, 0, le=None)[1] == 0x9000  # again: no change
    assert not card.contact_chip.dirty
    assert card.contact_chip.state.lifecycle == contact.LC_LOCKED
    fcp2 = FCP_EF.replace(b"\x83\x02\x01\x00", b"\x83\x02\x01\x01")
    assert host.send(0x00, 0xE0, 0, 0, fcp2)[1] == 0x6985  # still closed for personalization
