"""Product definitions, PKCS#15 contents, the offline unblock helpers, and the DESFire client."""

from __future__ import annotations

import json

import pytest

from cards import crypto, pkcs15, tlv, unblock
from cards.desfire import CommMode, DesfireCard, FileSettings
from cards.errors import DesfireStatusError, ProtocolError
from cards.products import CPS3, CPS4, PRODUCTS, card_number, card_serial, get_product
from cards.transport import FunctionTransport
from cardsim.card import Card

H = bytes.fromhex


def test_products_are_data_with_a_json_snapshot() -> None:
    snapshot = CPS4.snapshot()
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["validity_years"] == 6
    assert snapshot["contact"]["atr"] == "3B9B188001001225006480040100009044"
    assert [s["certificate_profile"] for s in snapshot["key_slots"]] == ["cps_auth", "cps_sign"]
    assert snapshot["pin"]["tries"] == 3
    assert snapshot["pin"]["min_length"] == snapshot["pin"]["max_length"] == 4
    assert snapshot["puk"]["max_length"] == 8
    assert CPS3.validity_years == 3
    assert not CPS3.issued
    assert get_product("CPS4", 1) is CPS4
    assert PRODUCTS[("CPS3", 1)] is CPS3
    with pytest.raises(KeyError, match="no card product CPS5 version 1"):
        get_product("CPS5", 1)
    with pytest.raises(KeyError, match="no key slot"):
        CPS4.key_slot("decrypt")
    assert CPS4.apdus is not None
    assert "00 44 00 00" in CPS4.apdus.close_lifecycle
    fids = [ef.fid for ef in CPS4.contact.application.files]
    assert len(fids) == len(set(fids))


def test_card_serial_encoding() -> None:
    serial = card_serial("0123456789")
    assert serial == H("80250000010123456789")
    assert card_number(serial) == "0123456789"
    for bad in ("012345678", "01234567a9", "０１２３４５６７８９"):
        with pytest.raises(ValueError, match="10 digits"):
            card_serial(bad)
    with pytest.raises(ValueError, match="BCD"):
        card_number(H("802500000101234567AB"))


def test_pkcs15_files_decode_and_fit_their_efs() -> None:
    serial = card_serial("0123456789")
    rendered = pkcs15.render(CPS4, serial)
    sizes = {ef.name: ef.size for ef in (*CPS4.contact.mf_files, *CPS4.contact.application.files)}
    for name, content in rendered.items():
        assert tlv.decode(content)
        assert len(content) <= sizes[name]
    token = tlv.decode(rendered["EF.TokenInfo"])[0].children()
    assert token[1] == tlv.Tlv(0x04, serial)
    prkdf = tlv.decode(rendered["EF.PrKDF"])
    assert len(prkdf) == 2
    # OpenSC 0.23 quirk: the private key path is 30 02 04 00, never an empty 30 00
    assert H("3002040002020800") in rendered["EF.PrKDF"]
    assert H("0402C000") in rendered["EF.CDF"]
    assert H("80020081") in rendered["EF.AODF"]
    with pytest.raises(KeyError):
        pkcs15._fid(CPS3, "EF.CDF")


SERIAL = H("80250000010123456789")
MASTER = bytes(range(32))


def test_unblock_helpers() -> None:
    challenge = H("0102030405060708")
    answer = unblock.response(MASTER, SERIAL, 1, challenge)
    key = unblock.admin_key(MASTER, SERIAL, 1)
    assert answer == crypto.unblock_response(key, SERIAL, 1, 0x81, challenge)
    code = unblock.format_code(answer)
    assert len(code) == 19
    assert code.count("-") == 3
    assert unblock.parse_code(code.lower().replace("-", " ")) == answer
    for bad in ("12", "zz" * 8, code + "00"):
        with pytest.raises(ValueError, match="hexadecimal"):
            unblock.parse_code(bad)
    assert unblock.challenge_apdu().encode() == H("0084000008")
    assert unblock.response_apdu(answer).encode() == H("0082008A08") + answer
    assert unblock.new_pin_apdu(b"4321").encode() == H("002C02810434333231")
    assert unblock.set_admin_key_apdu(bytes(16), 1).encode() == H("0024018A1101") + bytes(16)
    with pytest.raises(ValueError):
        unblock.response_apdu(b"short")
    with pytest.raises(ValueError):
        unblock.set_admin_key_apdu(bytes(8), 1)


def test_offline_unblock_rejects_a_bad_challenge() -> None:
    from cards.errors import MalformedResponse
    from cards.iso7816 import IsoCard

    card = IsoCard(FunctionTransport(lambda raw: b"\x01\x02\x90\x00"))
    with pytest.raises(MalformedResponse, match="GET CHALLENGE"):
        unblock.offline_unblock(card, lambda c: bytes(8), b"1234")


WRONG_KEY = bytes(range(16))


def _transport_key(chip: Card) -> bytes:
    """The blank virtual card's PICC master key: the test vendor's transport key for its UID."""
    from demo.scenario import transport_key

    assert chip.desfire_chip is not None
    return transport_key(chip.desfire_chip.state.uid)


def _desfire() -> tuple[Card, DesfireCard]:
    card = Card.blank("cps4")
    assert card.contactless is not None
    return card, DesfireCard(FunctionTransport(card.contactless.transmit))


def test_desfire_client_against_the_virtual_card() -> None:
    chip, card = _desfire()
    assert chip.desfire_chip is not None
    card.select_application(0)
    session = card.authenticate(0, _transport_key(chip))
    assert session.cmd_ctr == 0
    assert card.get_card_uid() == chip.desfire_chip.state.uid
    card.run(session.create_application(H("5350430B83")))
    card.select_application(0x435053)
    card.authenticate(0, bytes(16))
    card.change_key(1, bytes(range(1, 17)), 1, bytes(16))
    card.run(
        card.session.create_std_data_file(  # type: ignore[union-attr]
            FileSettings(1, 32, 3, 1, 0, 0, 0)
        )
    )
    card.write_data(1, 0, b"hello")
    assert card.read_data(1, 0, 5) == b"hello"
    with pytest.raises(DesfireStatusError, match="ReadData: boundary error"):
        card.read_data(1, 30, 5)
    assert card.session is not None
    assert not card.session.active
    card.authenticate(0, bytes(16))
    card.change_key(0, bytes(range(2, 18)), 1)
    assert card.session is None
    with pytest.raises(ProtocolError):
        card.read_data(1, 0, 1)
    card.authenticate(1, bytes(range(1, 17)))
    assert card.read_data(1, 0, 5, CommMode.FULL) == b"hello"
    chip.faults.sw_at[chip.apdu_count + 1] = 0x911C  # the card refuses the next command
    with pytest.raises(DesfireStatusError, match="GetVersion: illegal command"):
        card.get_version()
    with pytest.raises(DesfireStatusError, match="authentication error"):
        card.authenticate(0, bytes(16))


def test_desfire_client_multi_frame_and_non_first() -> None:
    frames = [b"\x01" * 7 + b"\x91\xaf", b"\x02" * 7 + b"\x91\xaf", b"\x03" * 14 + b"\x91\x00"]

    def version(raw: bytes) -> bytes:
        return frames.pop(0)

    assert (
        DesfireCard(FunctionTransport(version)).get_version()
        == b"\x01" * 7 + b"\x02" * 7 + b"\x03" * 14
    )
    chip, card = _desfire()
    assert len(card.get_version()) == 28  # three frames from the card, 91 AF between them
    card.select_application(0)
    first = card.authenticate(0, _transport_key(chip))
    again = card.authenticate(
        0, _transport_key(chip), first=False
    )  # NonFirst keeps the transaction identifier
    assert again.ti == first.ti
    assert card.get_card_uid() == chip.desfire_chip.state.uid  # type: ignore[union-attr]
    with pytest.raises(DesfireStatusError):
        card.authenticate(0, WRONG_KEY, first=False)
    with pytest.raises(DesfireStatusError, match="authentication error"):
        DesfireCard(
            FunctionTransport(chip.contactless.transmit),  # type: ignore[union-attr]
            rng=lambda n: bytes(n),
        ).authenticate(0, WRONG_KEY)
