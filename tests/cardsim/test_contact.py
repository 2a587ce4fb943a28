"""The CPS4 contact chip in process: files, PIN/PUK counters, unblock, on-chip keys, signatures."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from cards import crypto
from cardsim.card import Card
from tests.cardsim.conftest import card_keys
from tests.cardsim.host import (
    ADMIN_KEY,
    TEST_PIN,
    TEST_PUK,
    personalize,
    public_key_from_template,
    split,
)

SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


@pytest.fixture
def issued(card: Card) -> tuple[Card, rsa.RSAPublicKey]:
    enc, mac, _ = card_keys(card.serial)
    publics = personalize(card.transmit, enc, mac, files={(0x5000,): b"x" * 600}, lock=True)
    n, e = public_key_from_template(publics[1])
    return card, rsa.RSAPublicNumbers(e, n).public_key()


def tx(card: Card, hexa: str, data: bytes = b"") -> tuple[bytes, int]:
    return split(card.transmit(bytes.fromhex(hexa) + data))


def test_atr_and_serial_of_a_blank_card(card: Card) -> None:
    assert card.contact.power_on() == bytes.fromhex("3B9B188001001225006480040100009044")
    assert tx(card, "00A4080C02D003")[1] == 0x9000
    data, sw = tx(card, "00B000000A")
    assert sw == 0x9000 and data == card.serial and data[:5] == bytes.fromhex("8025000001")


def test_select_unknown_file_and_aid(card: Card) -> None:
    assert tx(card, "00A4000C021234")[1] == 0x6A82
    assert tx(card, "00A404000DE828BD080F8025000001FF001000")[1] == 0x6A82
    assert tx(card, "01A404000880250000" + "01FF010000")[1] == 0x9000


def test_pin_verify_counts_down_and_blocks_then_puk_unblocks(issued: tuple[Card, object]) -> None:
    card, _ = issued
    assert tx(card, "0020000104", b"0000") == (b"", 0x63C2)
    assert tx(card, "00200001") == (b"", 0x63C2)
    assert tx(card, "0020000104", b"1111") == (b"", 0x63C1)
    assert tx(card, "0020000104", TEST_PIN) == (b"", 0x9000)  # a good PIN resets the counter
    assert tx(card, "00200001") == (b"", 0x9000)
    for left in (2, 1, 0):
        assert tx(card, "0020000104", b"9999") == (b"", 0x63C0 | left)
    assert tx(card, "0020000104", TEST_PIN) == (b"", 0x6983)
    assert tx(card, "00200001") == (b"", 0x6983)
    # Wrong PUK counts on the PUK's own counter; the PIN stays blocked.
    assert tx(card, "002C00010C", b"00000000" + b"4321") == (b"", 0x63C9)
    assert tx(card, "002C00010C", TEST_PUK + b"4321") == (b"", 0x9000)
    assert tx(card, "0020000104", b"4321") == (b"", 0x9000)


def test_cps_middleware_one_command_unblock_form(issued: tuple[Card, object]) -> None:
    card, _ = issued
    for _ in range(3):
        tx(card, "0020000104", b"9999")
    assert tx(card, "002C03810C", TEST_PUK + b"5678") == (b"", 0x9000)
    assert tx(card, "0020008104", b"5678") == (b"", 0x9000)


def test_offline_unblock_with_the_admin_key(issued: tuple[Card, object]) -> None:
    card, _ = issued
    for _ in range(3):
        tx(card, "0020000104", b"9999")
    challenge, sw = tx(card, "0084000008")
    assert sw == 0x9000 and len(challenge) == 8
    response = crypto.unblock_response(ADMIN_KEY, card.serial, 1, 0x81, challenge)
    assert tx(card, "008200" + "8A08", response) == (b"", 0x9000)
    assert tx(card, "002C028104", b"2468") == (b"", 0x9000)
    assert tx(card, "0020008104", b"2468") == (b"", 0x9000)
    # The challenge is used once: replaying the same response fails.
    assert tx(card, "0082008A08", response)[1] == 0x6985
    tx(card, "0084000008")
    assert tx(card, "0082008A08", bytes(8))[1] == 0x6982
    # The one-command form: response || new PIN.
    challenge, _ = tx(card, "0084000008")
    response = crypto.unblock_response(ADMIN_KEY, card.serial, 1, 0x81, challenge)
    assert tx(card, "002C02810C", response + b"1357") == (b"", 0x9000)
    assert tx(card, "0020008104", b"1357") == (b"", 0x9000)


def test_pin_formats_are_checked_without_counting(issued: tuple[Card, object]) -> None:
    card, _ = issued
    assert tx(card, "0020000105", b"12345")[1] == 0x6700
    assert tx(card, "0020000104", b"12a4")[1] == 0x6700
    assert tx(card, "00200001") == (b"", 0x63C3)


def test_change_pin(issued: tuple[Card, object]) -> None:
    card, _ = issued
    assert tx(card, "0024000108", TEST_PIN + b"8642") == (b"", 0x9000)
    assert tx(card, "0020000104", TEST_PIN)[1] == 0x63C2


def test_sign_pkcs1_needs_the_pin_and_verifies(issued: tuple[Card, rsa.RSAPublicKey]) -> None:
    card, public = issued
    digest = hashlib.sha256(b"ordonnance").digest()
    assert tx(card, "0022 41B6 03 840101".replace(" ", ""))[1] == 0x9000
    assert tx(card, "002A9E9A33", SHA256_PREFIX + digest + b"\x00")[1] == 0x6982
    assert tx(card, "0020000104", TEST_PIN)[1] == 0x9000
    sig, sw = tx(card, "002A9E9A33", SHA256_PREFIX + digest + b"\x00")
    assert sw == 0x9000 and len(sig) == 256
    public.verify(sig, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))


def test_sign_pss_with_the_cps_mse_form(issued: tuple[Card, rsa.RSAPublicKey]) -> None:
    card, public = issued
    tx(card, "0020000104", TEST_PIN)
    assert tx(card, "002281B606840181800105")[1] == 0x9000
    digest = hashlib.sha256(b"feuille de soins").digest()
    sig, sw = tx(card, "002A9E9A20", digest + b"\x00")
    assert sw == 0x9000
    public.verify(
        sig,
        digest,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        utils.Prehashed(hashes.SHA256()),
    )
    with pytest.raises(InvalidSignature):
        public.verify(
            sig,
            digest[::-1],
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
            utils.Prehashed(hashes.SHA256()),
        )


def test_decipher_through_command_chaining(issued: tuple[Card, rsa.RSAPublicKey]) -> None:
    card, public = issued
    tx(card, "0020000104", TEST_PIN)
    assert tx(card, "002241B803840101")[1] == 0x9000
    cryptogram = public.encrypt(b"secret de session", padding.PKCS1v15())
    body = b"\x81" + cryptogram
    assert tx(card, "102A8086" + f"{200:02X}", body[:200]) == (b"", 0x9000)
    rest = body[200:]
    assert tx(card, "002A8086" + f"{len(rest):02X}", rest + b"\x00") == (
        b"secret de session",
        0x9000,
    )


def test_public_key_read_back_uses_get_response(issued: tuple[Card, rsa.RSAPublicKey]) -> None:
    card, public = issued
    data, sw = tx(card, "0047010100")
    assert sw == 0x610E and len(data) == 256
    more, sw = tx(card, "00C000000E")
    assert sw == 0x9000
    n, e = public_key_from_template(data + more)
    assert public.public_numbers().n == n and e == 65537


def test_read_binary_past_end_and_without_current_ef(issued: tuple[Card, object]) -> None:
    card, _ = issued
    assert tx(card, "00B0000010")[1] == 0x6986
    assert tx(card, "00A4000C025000")[1] == 0x9000
    data, sw = tx(card, "00B0010000")
    assert sw == 0x9000 and data == b"x" * 256
    data, sw = tx(card, "00B0020010")
    assert (sw == 0x6282 and data == b"x" * 16) or (len(data), sw) == (16, 0x9000)
    assert tx(card, "00B0030000")[1] == 0x6B00
    assert tx(card, "00D6000001", b"y")[1] == 0x6982


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("00", 0x6700),
        ("00A4", 0x6700),
        ("00A4040005A000", 0x6700),
        ("00FE0000", 0x6D00),
        ("2CA40000", 0x6E00),
        ("FFCA000000", 0x6E00),
        ("80500000", 0x6700),
        ("00C0000010", 0x6985),
        ("0022F3B6", 0x9000),
        ("00200099", 0x6A88),
        ("002A9E9A0100", 0x6985),
        ("0084010008", 0x6A86),
        ("008400000801", 0x6700),
    ],
)
def test_bad_input_gives_real_status_words(card: Card, apdu: str, sw: int) -> None:
    assert split(card.transmit(bytes.fromhex(apdu)))[1] == sw
