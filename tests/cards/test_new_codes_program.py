"""The new-codes program on a personalized virtual CPS4 (no server): new PIN and PUK inside SCP03
on a closed card, the old codes refused, a run again after a tear converging, another card
refused before anything is written."""

from __future__ import annotations

import pytest

from cards import iso7816
from cards.errors import CardMismatch
from cards.products import CPS4
from cards.programs.base import run_program
from cards.programs.codes import NewCodesInputs, NewCodesResult, new_codes_program
from cards.programs.cps4 import Cps4Result, cps4_program
from cards.scp03 import Scp03StaticKeys
from cards.secret import Secret
from cardsim import contact
from cardsim.card import TEST_SCP03_MASTER, Card, CardRemovedError, KeyPool
from demo.scenario import Issuer, Scenario, make_scenario

OLD_PIN, OLD_PUK = b"2468", b"13572468"  # what cps4_inputs writes
NEW_PIN, NEW_PUK = "9135", "86420975"


def _issued(key_pool: KeyPool, issuer: Issuer) -> Scenario:
    scenario = make_scenario(key_pool)
    result = run_program(
        cps4_program(scenario.inputs), scenario.transports, issue_certificates=issuer
    )
    assert isinstance(result, Cps4Result)
    scenario.card.remove()
    scenario.card.insert()
    return scenario


def _inputs(card: Card, pin: str = NEW_PIN, puk: str = NEW_PUK) -> NewCodesInputs:
    assert CPS4.scp03 is not None
    return NewCodesInputs(
        card_serial=card.serial,
        kdd=card.serial,
        atr=card.contact.atr,
        scp03_keys=Scp03StaticKeys.diversify(
            TEST_SCP03_MASTER, card.serial, CPS4.scp03.kvn, CPS4.scp03.key_length
        ),
        pin=Secret(pin),
        puk=Secret(puk),
    )


def _sw(card: Card, apdu: iso7816.CommandApdu) -> int:
    raw = card.contact.transmit(apdu.encode())
    return int.from_bytes(raw[-2:], "big")


def test_new_codes_replace_pin_and_puk_of_a_closed_card(key_pool: KeyPool, issuer: Issuer) -> None:
    scenario = _issued(key_pool, issuer)
    card = scenario.card
    assert card.contact_chip.state.lifecycle == contact.LC_LOCKED
    # The PUK is blocked (three wrong tries): new codes are the way out.
    for _ in range(CPS4.puk.tries if CPS4.puk else 0):
        _sw(card, iso7816.reset_retry_counter(0x81, 0x01, puk=b"00000000"))
    assert _sw(card, iso7816.verify(0x82, None)) == 0x6983

    result = run_program(new_codes_program(_inputs(card)), scenario.transports)
    assert isinstance(result, NewCodesResult)
    assert (result.pin_tries_left, result.puk_tries_left) == (3, CPS4.puk.tries if CPS4.puk else 0)
    state = card.contact_chip.state
    assert state.pins[0x81].digest == contact.pin_digest(state.serial, 0x81, NEW_PIN.encode())
    assert state.pins[0x82].digest == contact.pin_digest(state.serial, 0x82, NEW_PUK.encode())

    card.remove()
    card.insert()
    assert _sw(card, iso7816.verify(0x81, OLD_PIN)) == 0x63C2
    assert _sw(card, iso7816.reset_retry_counter(0x81, 0x01, puk=OLD_PUK)) & 0xFFF0 == 0x63C0
    assert _sw(card, iso7816.reset_retry_counter(0x81, 0x01, puk=NEW_PUK.encode())) == 0x9000
    assert _sw(card, iso7816.verify(0x81, NEW_PIN.encode())) == 0x9000


def test_outside_the_secure_channel_the_card_refuses_to_set_codes(
    key_pool: KeyPool, issuer: Issuer
) -> None:
    card = _issued(key_pool, issuer).card
    sw = _sw(card, iso7816.change_reference_data(0x82, NEW_PUK.encode()))
    assert sw == 0x6982
    assert _sw(card, iso7816.reset_retry_counter(0x81, 0x01, puk=OLD_PUK)) == 0x9000


@pytest.mark.parametrize("executes", [False, True])
def test_a_torn_session_is_run_again_and_converges(
    key_pool: KeyPool, issuer: Issuer, executes: bool
) -> None:
    scenario = _issued(key_pool, issuer)
    card = scenario.card
    # Tear at the PUK write (APDU 7 of the run: 4 in the first round trip, then EXTERNAL
    # AUTHENTICATE, the PIN, the PUK): the PIN is new, the PUK new only if the write executed.
    card.faults.tear_at = card.apdu_count + 7
    card.faults.tear_executes = executes
    with pytest.raises(Exception) as torn:
        run_program(new_codes_program(_inputs(card)), scenario.transports)
    assert isinstance(torn.value, CardRemovedError) or "removed" in str(torn.value)
    state = card.contact_chip.state
    assert state.pins[0x81].digest == contact.pin_digest(state.serial, 0x81, NEW_PIN.encode())
    expected_puk = NEW_PUK.encode() if executes else OLD_PUK
    assert state.pins[0x82].digest == contact.pin_digest(state.serial, 0x82, expected_puk)

    card.insert()
    result = run_program(new_codes_program(_inputs(card)), scenario.transports)
    assert isinstance(result, NewCodesResult)
    assert state.pins[0x82].digest == contact.pin_digest(state.serial, 0x82, NEW_PUK.encode())


def test_another_card_is_refused_before_anything_is_written(
    key_pool: KeyPool, issuer: Issuer
) -> None:
    first, second = _issued(key_pool, issuer), _issued(key_pool, issuer)
    with pytest.raises(CardMismatch):
        run_program(new_codes_program(_inputs(first.card)), second.transports)
    state = second.card.contact_chip.state
    assert state.pins[0x81].digest == contact.pin_digest(state.serial, 0x81, OLD_PIN)
