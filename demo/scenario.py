"""Server-side stand-ins for the CPS4 program's tests and the card benchmark (``bench/cards.py``):
master keys, diversification, a throwaway CA issuing the two certificates, and a fresh blank
virtual card (``cardsim``, in process) with the inputs the server would compute for it.

The card is cardsim's, the card side implemented apart from the host library (DESIGN.md §2), so a
host-side logic error cannot hide behind a card side that shares it. Never the server's path: the
real server diversifies inside its key backend and issues through the PKI.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_der_public_key
from cryptography.x509.oid import NameOID

from cards import crypto
from cards.desfire import aid_bytes
from cards.products import CPS4, card_number
from cards.programs.base import CertificateReply, CertificateRequest, Interface
from cards.programs.cps4 import Cps4Inputs, Identity, StockRecord
from cards.scp03 import Scp03StaticKeys
from cards.secret import Secret
from cards.transport import FunctionTransport, Transport
from cardsim.card import (
    TEST_SCP03_MASTER,
    TEST_TRANSPORT_MASTER,
    TEST_TRANSPORT_VERSION,
    Card,
    KeyPool,
)
from cardsim.rig import KEY_POOL

DESFIRE_MASTERS = {0: bytes(range(16, 32)), 1: bytes(range(32, 48)), 2: bytes(range(48, 64))}
PICC_MASTER = bytes(range(64, 80))
ADMIN_MASTER = bytes(range(80, 112))
APP_INITIAL_MASTER = bytes(range(112, 128))
FACTORY_TRANSPORT_KEY = bytes(16)  # NXP's PICC master key (AES zeros, version 0): public
KEY_POOL_FILE = KEY_POOL


def load_key_pool() -> KeyPool:
    """The committed RSA-2048 keys the virtual card hands out in turn (no key generation)."""
    return KeyPool.from_pem_file(KEY_POOL_FILE)


def picc_key(uid: bytes) -> bytes:
    app = CPS4.desfire
    assert app is not None
    return crypto.an10922_diversify_aes128(
        PICC_MASTER, crypto.an10922_input(uid, aid_bytes(0), app.system_identifier)
    )


def transport_key(uid: bytes, version: int = TEST_TRANSPORT_VERSION) -> bytes:
    """A blank virtual card's PICC key: the test vendor's transport key, diversified for the card
    (cardsim's default), or the factory zeros for version 0."""
    if version == 0:
        return FACTORY_TRANSPORT_KEY
    app = CPS4.desfire
    assert app is not None
    return crypto.an10922_diversify_aes128(
        TEST_TRANSPORT_MASTER, crypto.an10922_input(uid, aid_bytes(0), app.system_identifier)
    )


def app_initial_key(uid: bytes) -> bytes:
    """The per-card key the DESFire application is created with (SetConfiguration 01)."""
    app = CPS4.desfire
    assert app is not None
    m = crypto.an10922_input(uid, aid_bytes(app.aid), app.system_identifier)
    return crypto.an10922_diversify_aes128(APP_INITIAL_MASTER, m)


def app_keys(uid: bytes) -> dict[int, bytes]:
    app = CPS4.desfire
    assert app is not None
    m = crypto.an10922_input(uid, aid_bytes(app.aid), app.system_identifier)
    return {k: crypto.an10922_diversify_aes128(master, m) for k, master in DESFIRE_MASTERS.items()}


class Issuer:
    """A throwaway CA that certifies whatever public keys the program read (test double)."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TEST AC IGC-SANTE")])
        self.requests: list[CertificateRequest] = []

    def __call__(self, request: CertificateRequest) -> CertificateReply:
        self.requests.append(request)
        now = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)
        out = {}
        for slot, _ in request.public_keys.items():
            public = load_der_public_key(request.spki_der(slot))
            assert isinstance(public, rsa.RSAPublicKey)
            cert = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"card {slot}")]))
                .issuer_name(self.name)
                .public_key(public)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now)
                .not_valid_after(now + dt.timedelta(days=365 * 3))
                .sign(self.key, hashes.SHA256())
            )
            out[slot] = cert.public_bytes(Encoding.DER)
        return CertificateReply(out)


def cps4_inputs(
    card: Card,
    *,
    access_credential: bytes | None = None,
    certificates: Mapping[str, bytes] | None = None,
) -> Cps4Inputs:
    """What the server computes for this blank virtual card (the published test master keys)."""
    assert card.desfire_chip is not None
    assert CPS4.scp03 is not None
    serial = card.serial  # EF.SN.ICC, also the SCP03 KDD
    uid = card.desfire_chip.state.uid
    # The batch file names the transport key version; the virtual card stands for it here.
    transport_version = card.desfire_chip.state.picc_key.version
    return Cps4Inputs(
        stock=StockRecord(card_serial=serial, kdd=serial, desfire_uid=uid, atr=card.contact.atr),
        identity=Identity(
            card_number=card_number(serial),
            national_id="810002813839",
            valid_from=dt.date(2025, 7, 1),
            valid_until=dt.date(2031, 6, 30),
            data_objects={
                "CPS_ID_CARD": bytes.fromhex("3006020100020101"),
                "CPS_NAME_PS": b"DONNAT-GADY ISABELLE",
                "CPS_ACTIVITY_01_PS": bytes(40),
            },
        ),
        scp03_keys=Scp03StaticKeys.diversify(
            TEST_SCP03_MASTER, serial, CPS4.scp03.kvn, CPS4.scp03.key_length
        ),
        desfire_transport_key=transport_key(uid, transport_version),
        desfire_transport_key_version=transport_version,
        desfire_picc_key=picc_key(uid),
        desfire_app_keys=app_keys(uid),
        desfire_app_initial_key=app_initial_key(uid),
        admin_key=crypto.unblock_admin_key(ADMIN_MASTER, serial, 1),
        pin=Secret("2468"),
        puk=Secret("13572468"),
        access_credential=secrets.token_bytes(16)
        if access_credential is None
        else access_credential,
        certificates=certificates,
    )


def card_transports(card: Card) -> dict[Interface, Transport]:
    """The two readers of the in-process virtual card."""
    assert card.contactless is not None
    return {
        Interface.CONTACT: FunctionTransport(card.contact.transmit),
        Interface.CONTACTLESS: FunctionTransport(card.contactless.transmit),
    }


@dataclass
class Scenario:
    card: Card
    inputs: Cps4Inputs
    transports: dict[Interface, Transport] = field(default_factory=dict)


def make_scenario(key_pool: KeyPool) -> Scenario:
    """A new blank virtual CPS4 (its own random serial and UID) and the inputs to personalize it."""
    card = Card.blank("cps4", keygen=key_pool)
    return Scenario(card, cps4_inputs(card), card_transports(card))
