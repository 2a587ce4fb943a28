"""Server-side stand-ins for the CPS4 program tests and the benchmark: master keys, diversification,
a throwaway CA issuing the two certificates, and a fresh card double with matching inputs.

Test code only: the real server diversifies inside its key backend and issues through the PKI.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_der_public_key
from cryptography.x509.oid import NameOID

from cards import crypto
from cards.desfire import aid_bytes
from cards.products import CPS4, card_serial
from cards.programs.base import CertificateReply, CertificateRequest, Interface
from cards.programs.cps4 import Cps4Inputs, Identity, Secret, StockRecord
from cards.scp03 import Scp03StaticKeys
from cards.transport import FunctionTransport, Transport
from tests.cards.card_double import CardDouble, KeyPool

ISSUER_MASTER = bytes(range(32))
DESFIRE_MASTERS = {0: bytes(range(16, 32)), 1: bytes(range(32, 48)), 2: bytes(range(48, 64))}
PICC_MASTER = bytes(range(64, 80))
ADMIN_MASTER = bytes(range(80, 112))
TRANSPORT_KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")


def picc_key(uid: bytes) -> bytes:
    app = CPS4.desfire
    assert app is not None
    return crypto.an10922_diversify_aes128(
        PICC_MASTER, crypto.an10922_input(uid, aid_bytes(0), app.system_identifier)
    )


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


@dataclass
class Scenario:
    card: CardDouble
    inputs: Cps4Inputs
    transports: dict[Interface, Transport] = field(default_factory=dict)


def make_scenario(
    key_pool: KeyPool,
    *,
    card_number: str = "0123456789",
    rng: Callable[[int], bytes] = secrets.token_bytes,
) -> Scenario:
    serial = card_serial(card_number)
    kdd = bytes.fromhex("D9B1DE5D0362DEDCE4FB")
    uid = bytes.fromhex("04782E21801D80")
    scp03 = Scp03StaticKeys.diversify(ISSUER_MASTER, kdd, 0x30, 16)
    card = CardDouble(
        card_number=card_number,
        kdd=kdd,
        uid=uid,
        scp03_enc=scp03.enc,
        scp03_mac=scp03.mac,
        transport_key=TRANSPORT_KEY,
        key_source=key_pool,
        rng=rng,
    )
    inputs = Cps4Inputs(
        stock=StockRecord(card_serial=serial, kdd=kdd, desfire_uid=uid, atr=CPS4.contact.atr),
        identity=Identity(
            card_number=card_number,
            national_id="810002813839",
            valid_from=dt.date(2025, 7, 1),
            valid_until=dt.date(2031, 6, 30),
            data_objects={
                "CPS_ID_CARD": bytes.fromhex("3006020100020101"),
                "CPS_NAME_PS": b"DONNAT-GADY ISABELLE",
                "CPS_ACTIVITY_01_PS": bytes(40),
            },
        ),
        scp03_keys=scp03,
        desfire_transport_key=TRANSPORT_KEY,
        desfire_picc_key=picc_key(uid),
        desfire_app_keys=app_keys(uid),
        admin_key=crypto.unblock_admin_key(ADMIN_MASTER, serial, 1),
        pin=Secret("2468"),
        puk=Secret("13572468"),
        access_credential=secrets.token_bytes(16),
    )
    transports: dict[Interface, Transport] = {
        Interface.CONTACT: FunctionTransport(card.contact),
        Interface.CONTACTLESS: FunctionTransport(card.contactless),
    }
    return Scenario(card, inputs, transports)
