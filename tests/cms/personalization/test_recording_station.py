"""Issue 11 §1: a station that records everything it relays learns no DESFire key, no credential
and no SCP03 session (ADR 0018).

A whole CPS4 personalization runs through the station relay (real views, real card key store,
the virtual card) with a recorder between the relay and the card. The eavesdropper then tries
every public value on the transcript. Cards come from a batch whose transport master was
imported at a key ceremony (random here, as the vendor's would be), with an SCP03 issuer master
of the ceremony too. The control run personalizes a card still on the factory PICC key: there
the same attack recovers every key and the credential, so the test can fail.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from tests.cms.personalization.conftest import (  # noqa: F401 - shared fixtures
    CARD_KEYS_PASSPHRASE_ENV,
    card_key_dir,
    scene,
)
from tests.cms.personalization.eavesdropper import Eavesdropper, Exchange, Recorder

pytestmark = pytest.mark.django_db(transaction=True)

SCP03_MASTER = secrets.token_bytes(32)  # the issuer's, from a key ceremony
TRANSPORT_MASTER = secrets.token_bytes(16)  # the card vendor's, from a key ceremony
TRANSPORT_VERSION = 7


@pytest.fixture
def card_keys(settings: Any, card_key_dir: Path, tmp_path: Path) -> Path:  # noqa: F811
    """A card key store of its own, filled as at a key ceremony: the issuer's SCP03 master and
    the vendor's transport master are secrets; the other masters are random."""
    from cards.products import CPS4
    from cms.personalization.keys import card_key_store, transport_master_import
    from pki.keys.symmetric import master_label

    assert CPS4.scp03 is not None
    location = tmp_path / "ceremony-card-keys"
    settings.CARD_KEY_STORE = {
        "BACKEND": "software",
        "OPTIONS": {"location": str(location), "passphrase_env": CARD_KEYS_PASSPHRASE_ENV},
    }
    store = card_key_store()
    store.check()
    store.import_key(master_label("scp03-issuer", CPS4.scp03.kvn), SCP03_MASTER)
    transport_master_import(version=TRANSPORT_VERSION, key=TRANSPORT_MASTER)
    return location


def _public_values() -> tuple[set[bytes], set[bytes]]:
    """Every key and master anyone can read: factory default, card-protocols.md vectors, the
    demo's and the simulator's published constants. (keys, masters)"""
    from cardsim.card import TEST_SCP03_MASTER, TEST_TRANSPORT_MASTER
    from demo import scenario

    h = bytes.fromhex
    keys = {
        bytes(16),
        bytes(range(16)),
        bytes(range(16, 32)),
        bytes(range(32, 48)),
        h("A8DD63A3B89D54B37CA802473FDA9175"),  # AN10922 vector
        h("7A93D6571E4B180FCA6AC90C9A7488D4"),  # AN12196 session and ChangeKey vectors
        h("FC4AF159B62E549B5812394CAB1918CC"),
        h("4CF3CB41A22583A61E89B158D252FC53"),
        h("5529860B2FC5FB6154B7F28361D30BF9"),
        h("F3847D627727ED3BC9C4CC050489B966"),
        h("5004BF991F408672B1EF00F08F9E8647"),
        bytes([0xFF]) * 16,
    }
    masters = {
        h("00112233445566778899AABBCCDDEEFF"),
        TEST_TRANSPORT_MASTER,
        scenario.PICC_MASTER,
        scenario.APP_INITIAL_MASTER,
        scenario.ADMIN_MASTER[:16],
        scenario.ADMIN_MASTER[16:],
        *scenario.DESFIRE_MASTERS.values(),
        TEST_SCP03_MASTER,
        TEST_SCP03_MASTER[:16],
        TEST_SCP03_MASTER[16:],
    }
    return keys | {m for m in masters if len(m) == 16}, masters


def _personalize_recorded(
    scene: Any,  # noqa: F811 - the fixture's value
    card: Any,
    transport_version: int,
) -> list[Exchange]:
    from cardsim.card import InProcessReader
    from demo import setup
    from personalization_station.relay import CardLink, personalize

    setup.blank_card_register(
        product=scene.product,
        pool=scene.pool,
        chip_serial=card.serial.hex(),
        desfire_uid=card.desfire_chip.state.uid.hex().upper(),
        transport_key_version=transport_version,
    )
    holder = setup.holder_demo()
    setup.request_queued(
        holder=holder, product=scene.product, pool=scene.pool, operator=scene.operator
    )
    log: list[Exchange] = []
    link = CardLink(
        atr=card.contact.atr,
        contact=Recorder(InProcessReader(card.contact), "contact", log),
        contactless=Recorder(InProcessReader(card.contactless), "contactless", log),
        reader="inproc",
    )
    outcome = personalize(scene.api(), link)
    assert outcome.state == "done", outcome.message
    return log


def _attack(log: list[Exchange], *, extra_masters: frozenset[bytes] = frozenset()) -> Any:
    from cards.desfire import aid_bytes
    from cards.products import CPS4

    assert CPS4.desfire is not None and CPS4.scp03 is not None
    keys, masters = _public_values()
    return Eavesdropper(
        log,
        public_keys=keys,
        public_masters=masters | extra_masters,
        system_identifier=CPS4.desfire.system_identifier,
        aids=(aid_bytes(0), aid_bytes(CPS4.desfire.aid)),
        scp03_kvn=CPS4.scp03.kvn,
    ).attack()


def _written(card: Any) -> tuple[set[bytes], list[bytes]]:
    """What the card holds now: its DESFire keys, and the contents of its files."""
    from cards.desfire import aid_bytes
    from cards.products import CPS4

    assert CPS4.desfire is not None
    state = card.desfire_chip.state
    app = state.apps[aid_bytes(CPS4.desfire.aid)]
    keys = {state.picc_key.key, state.default_key.key, *(k.key for k in app.keys)}
    contents = [bytes(f.data).rstrip(b"\x00") for f in app.files.values()]
    return keys, contents


def test_a_recording_station_learns_no_key_and_no_credential(
    scene: Any,  # noqa: F811
    key_pool: Any,
) -> None:
    from cardsim.card import Card

    card = Card.blank(
        "cps4",
        keygen=key_pool,
        blank={
            "scp03_master": SCP03_MASTER,
            "transport_master": TRANSPORT_MASTER,
            "transport_version": TRANSPORT_VERSION,
        },
    )
    log = _personalize_recorded(scene, card, TRANSPORT_VERSION)
    findings = _attack(log)

    assert findings.sessions_seen >= 4  # PICC, application key 0, PICC (lock), key 1 (verify)
    assert findings.sessions_broken == []
    keys, contents = _written(card)
    assert len(keys) == 5 and not keys & findings.keys
    assert all(content and not findings.learned(content) for content in contents)
    assert not findings.scp03_broken
    # Nothing the program sends in the clear carries a file's content either.
    raw = b"".join(e.command + e.response for e in log)
    assert all(content not in raw for content in contents)


def test_the_same_attack_breaks_a_card_on_the_factory_transport_key(
    scene: Any,  # noqa: F811
    key_pool: Any,
    settings: Any,
) -> None:
    from cardsim.card import Card

    settings.DESFIRE_FACTORY_TRANSPORT_KEY = True  # what production refuses
    card = Card.blank(
        "cps4", keygen=key_pool, blank={"scp03_master": SCP03_MASTER, "factory_default": True}
    )
    log = _personalize_recorded(scene, card, 0)
    findings = _attack(log)

    assert findings.sessions_seen >= 4
    assert len(findings.sessions_broken) == findings.sessions_seen
    keys, contents = _written(card)
    assert keys <= findings.keys  # PICC master, initial key, application keys 0-2
    assert all(findings.learned(content) for content in contents)  # identity and credential
    # The SCP03 check finds the channel when the issuer master leaks: it can fail too.
    assert not findings.scp03_broken
    assert _attack(log, extra_masters=frozenset({SCP03_MASTER})).scp03_broken
