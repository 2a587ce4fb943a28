"""The card object: persistence, removal, a second blank card, fault injection, CPS3 fixture."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from cardsim import cps3
from cardsim.card import Card, CardRemovedError, KeyPool
from tests.cardsim.conftest import card_keys
from tests.cardsim.host import TEST_PIN, personalize, split

VERIFY_PIN = bytes.fromhex("0020000104") + TEST_PIN


def test_personalized_card_survives_a_restart(tmp_path: Path, key_pool: KeyPool) -> None:
    path = tmp_path / "card.json"
    card = Card.open(path, keygen=key_pool)
    enc, mac, _ = card_keys(card.serial)
    personalize(card.transmit, enc, mac, files={(0x5000,): b"identity"})
    assert split(card.transmit(VERIFY_PIN))[1] == 0x9000
    split(card.transmit(bytes.fromhex("0020000104") + b"0000"))
    again = Card.open(path, keygen=key_pool)
    assert again.serial == card.serial
    assert split(again.transmit(bytes.fromhex("00200001")))[1] == 0x63C2  # counter persisted
    again.transmit(bytes.fromhex("00A4000C025000"))
    assert split(again.transmit(bytes.fromhex("00B0000008"))) == (b"identity", 0x9000)
    text = path.read_text()
    assert TEST_PIN.decode() not in json.dumps(json.loads(text)["contact"]["pins"])


def test_state_file_is_replaced_atomically(tmp_path: Path, key_pool: KeyPool) -> None:
    path = tmp_path / "card.json"
    card = Card.open(path, keygen=key_pool)
    enc, mac, _ = card_keys(card.serial)
    personalize(card.transmit, enc, mac)
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]


def test_removal_and_a_second_blank_card(key_pool: KeyPool) -> None:
    first = Card.blank(keygen=key_pool)
    first.remove()
    with pytest.raises(CardRemovedError):
        first.transmit(bytes.fromhex("00A4000C023F00"))
    first.insert()
    assert split(first.transmit(bytes.fromhex("00A4000C023F00")))[1] == 0x9000
    second = Card.blank(keygen=key_pool)
    assert second.serial != first.serial
    assert second.desfire_chip and first.desfire_chip
    assert second.desfire_chip.state.uid != first.desfire_chip.state.uid


def test_insertion_resets_the_security_status(card: Card) -> None:
    enc, mac, _ = card_keys(card.serial)
    personalize(card.transmit, enc, mac)
    assert split(card.transmit(VERIFY_PIN))[1] == 0x9000
    card.remove()
    card.insert()
    assert split(card.transmit(bytes.fromhex("00200001")))[1] == 0x63C3


def test_tear_at_apdu_n_before_execution(card: Card) -> None:
    enc, mac, _ = card_keys(card.serial)
    personalize(card.transmit, enc, mac)
    card.faults.tear_at = card.apdu_count + 2
    card.transmit(bytes.fromhex("00A4000C023F00"))
    with pytest.raises(CardRemovedError):
        card.transmit(bytes.fromhex("0020000104") + b"0000")
    card.insert()
    assert split(card.transmit(bytes.fromhex("00200001")))[1] == 0x63C3  # never executed


def test_tear_after_execution_keeps_the_effect(card: Card) -> None:
    enc, mac, _ = card_keys(card.serial)
    personalize(card.transmit, enc, mac)
    card.faults.tear_at, card.faults.tear_executes = card.apdu_count + 1, True
    with pytest.raises(CardRemovedError):
        card.transmit(bytes.fromhex("0020000104") + b"0000")
    card.insert()
    assert split(card.transmit(bytes.fromhex("00200001")))[1] == 0x63C2


def test_forced_status_word_and_bit_flip(card: Card) -> None:
    card.faults.sw_at[card.apdu_count + 1] = 0x6581
    assert card.transmit(bytes.fromhex("00A4080C02D003")) == bytes.fromhex("6581")
    card.transmit(bytes.fromhex("00A4080C02D003"))
    card.faults.flip_at[card.apdu_count + 1] = 0
    data, sw = split(card.transmit(bytes.fromhex("00B000000A")))
    assert sw == 0x9000 and data[0] == card.serial[0] ^ 1 and data[1:] == card.serial[1:]


def test_exchange_log_has_no_secrets(card: Card, caplog: pytest.LogCaptureFixture) -> None:
    enc, mac, _ = card_keys(card.serial)
    with caplog.at_level(logging.DEBUG, logger="cardsim"):
        personalize(card.transmit, enc, mac)
        card.transmit(VERIFY_PIN)
    assert "00200001" in caplog.text
    assert TEST_PIN.hex() not in caplog.text
    assert b"12345678".hex() not in caplog.text


def test_cps3_fixture_card_reads_and_signs(key_pool: KeyPool) -> None:
    card = Card.blank("cps3", keygen=key_pool)
    assert card.contact.power_on() == bytes.fromhex("3BAC00402A001225006480000310009000")
    assert card.contactless is None
    assert split(card.transmit(bytes.fromhex("00A4080C0400014002")))[1] == 0x9000
    der = b""
    while True:
        data, sw = split(card.transmit(bytes([0, 0xB0, len(der) >> 8, len(der) & 0xFF, 0])))
        der += data
        if sw != 0x9000 or len(data) < 256:
            break
    cert = x509.load_der_x509_certificate(der)
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    pin = cps3.holder()["test_pin"].encode()
    assert split(card.transmit(bytes.fromhex("0020000104") + pin))[1] == 0x9000
    # The signature key (81) signs with PSO CDS only; the authentication key (82) does not.
    assert split(card.transmit(bytes.fromhex("002241B603840182")))[1] == 0x9000
    digest = hashlib.sha256(b"migration").digest()
    assert split(card.transmit(bytes.fromhex("002A9E9A20") + digest + b"\x00"))[1] == 0x6985
    assert split(card.transmit(bytes.fromhex("002241B603840181")))[1] == 0x9000
    sig, sw = split(card.transmit(bytes.fromhex("002A9E9A20") + digest + b"\x00"))
    assert sw == 0x9000
    public.verify(sig, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    # IAS-ECC: GET CHALLENGE answers 8 bytes only.
    assert len(split(card.transmit(bytes.fromhex("0084000008")))[0]) == 8
    assert split(card.transmit(bytes.fromhex("0084000010")))[1] == 0x6700
    # Read-only: no card manager, no personalization.
    assert split(card.transmit(bytes.fromhex("00A4040007A0000001510000")))[1] == 0x6A82
    assert split(card.transmit(bytes.fromhex("00D6000001FF")))[1] == 0x6982
