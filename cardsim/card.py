"""A virtual card: one shared state behind a contact and a contactless interface.

``Card`` is the in-process object tests use (``card.transmit(apdu) -> response``); the vpcd client
drives the same object from pcscd. Persistent state is written atomically to a JSON file after
every command that changed it, so a personalized card stays personalized across restarts.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cards import crypto
from cards.errors import TransportError
from cardsim import contact, desfire, facts
from cardsim.fs import AM_DELETE, AM_READ, AM_UPDATE, MF_FID, SC_ALWAYS, SC_NEVER, Node

log = logging.getLogger("cardsim")

STATE_FORMAT = 1
PRODUCTS = ("cps4", "cps3")
EF_SN_ICC = facts.EF_SN_ICC
ISSUER_PREFIX = facts.ISSUER_PREFIX
PIN = facts.CPS4.pin
PUK = facts.CPS4_PUK
SCP03_KEY_LENGTH = facts.SCP03_KEY_LENGTH

# Published test master key of card-protocols.md §3: blank cards are made with it unless the
# manufacturer is told another one (``--scp03-master-file``). Never a production key.
TEST_SCP03_MASTER = bytes.fromhex(
    "8C72C72CF908411653018807950D82FBAD947562F0828A0B10B8B9606ABF3BCD"
)

# The test vendor's DESFire transport master (version TEST_TRANSPORT_VERSION): blank cards leave
# the "factory" with their PICC master key diversified from it by AN10922 (UID ‖ 000000 ‖ the
# product's system identifier), as a card vendor pre-personalizes a batch with the transport key
# agreed at a key ceremony. Public, for the demo and the tests only; the embedded default imports
# it as ``desfire-transport.v1``. ``factory_default=True`` makes a card as NXP ships it instead
# (PICC master key AES zeros, version 0), which production refuses.
TEST_TRANSPORT_MASTER = bytes.fromhex("5452414E53504F52542D544553542D31")  # "TRANSPORT-TEST-1"
TEST_TRANSPORT_VERSION = 1

Rng = Callable[[int], bytes]


class CardRemovedError(Exception):
    """The card is not in the reader (removed, or torn out during a command)."""


class Chip(Protocol):
    """What an interface needs from a chip."""

    dirty: bool

    @property
    def atr(self) -> bytes: ...

    def power_on(self) -> None: ...

    def transmit(self, raw: bytes) -> bytes: ...


@dataclass
class Faults:
    """Armed faults, keyed by the number of the APDU (counted from 1 across both interfaces)."""

    tear_at: int | None = None
    tear_executes: bool = False
    sw_at: dict[int, int] = field(default_factory=dict)
    flip_at: dict[int, int] = field(default_factory=dict)


class KeyPool:
    """Key source for on-chip generation: fresh RSA-2048 keys, or a pre-generated pool for tests."""

    def __init__(self, keys: Iterable[rsa.RSAPrivateKey] = ()) -> None:
        self._keys = list(keys)
        self._next = 0
        self._lock = threading.Lock()

    @classmethod
    def from_pem_file(cls, path: Path) -> KeyPool:
        """Every PEM private key found in a file."""
        text = path.read_bytes()
        keys: list[rsa.RSAPrivateKey] = []
        marker = b"-----END PRIVATE KEY-----"
        for chunk in text.split(marker)[:-1]:
            key = serialization.load_pem_private_key(chunk + marker, password=None)
            if isinstance(key, rsa.RSAPrivateKey):
                keys.append(key)
        return cls(keys)

    def __call__(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if not self._keys:
                return rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key = self._keys[self._next % len(self._keys)]
            self._next += 1
            return key


def _bcd_serial(rng: Rng) -> bytes:
    digits = "".join(str(b % 10) for b in rng(10))
    return ISSUER_PREFIX + bytes.fromhex(digits)


def blank_state(
    product: str = "cps4",
    *,
    rng: Rng = secrets.token_bytes,
    scp03_master: bytes = TEST_SCP03_MASTER,
    transport_master: bytes = TEST_TRANSPORT_MASTER,
    transport_version: int = TEST_TRANSPORT_VERSION,
    factory_default: bool = False,
) -> dict[str, Any]:
    """A new blank card as the manufacturer delivers it (JSON-ready): PICC master key
    diversified from ``transport_master`` (vendor transport key of ``transport_version``), or
    with ``factory_default`` the public AES zeros of version 0."""
    if product == "cps3":
        from cardsim import cps3

        return cps3.fixture_state()
    if product != "cps4":
        raise ValueError(f"unknown product {product!r}")
    serial = _bcd_serial(rng)
    mf = Node(fid=MF_FID, df=True, ac={AM_READ: SC_ALWAYS})
    mf.add(
        Node(
            fid=EF_SN_ICC,
            df=False,
            size=len(serial),
            data=bytearray(serial),
            ac={AM_READ: SC_ALWAYS, AM_UPDATE: SC_NEVER, AM_DELETE: SC_NEVER},
        )
    )
    state = contact.ContactState(
        serial=serial,
        lifecycle=contact.LC_OP_READY,
        kvn=facts.SCP03_KVN,
        key_enc=crypto.scp03_diversify_key(
            scp03_master, serial, crypto.SCP03_DIVERSIFY_ENC, SCP03_KEY_LENGTH
        ),
        key_mac=crypto.scp03_diversify_key(
            scp03_master, serial, crypto.SCP03_DIVERSIFY_MAC, SCP03_KEY_LENGTH
        ),
        key_dek=crypto.scp03_diversify_key(
            scp03_master, serial, crypto.SCP03_DIVERSIFY_DEK, SCP03_KEY_LENGTH
        ),
        seq_counter=0,
        mf=mf,
        pins={
            PIN.reference: contact.PinObject.unset(PIN, puk_ref=PUK.reference),
            PUK.reference: contact.PinObject.unset(PUK),
        },
    )
    uid = b"\x04" + rng(6)
    if factory_default:
        picc_key = desfire.AesKey(bytes(16), 0)
    else:
        m = crypto.an10922_input(uid, bytes(3), facts.DESFIRE_SYSTEM_IDENTIFIER)
        picc_key = desfire.AesKey(
            crypto.an10922_diversify_aes128(transport_master, m), transport_version
        )
    dstate = desfire.DesfireState(uid=uid, picc_key=picc_key)
    return {
        "format": STATE_FORMAT,
        "product": "cps4",
        "contact": state.to_json(),
        "desfire": dstate.to_json(),
    }


def save_state(path: Path, data: dict[str, Any]) -> None:
    """Write the state file atomically (temporary file in the same folder, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".cardsim-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_state(path: Path) -> dict[str, Any]:
    """Read a state file."""
    data: dict[str, Any] = json.loads(path.read_text())
    if data.get("format") != STATE_FORMAT or data.get("product") not in PRODUCTS:
        raise ValueError(f"{path} is not a cardsim state file")
    return data


class Interface:
    """One side of the card (contact or contactless) as a reader sees it."""

    def __init__(self, card: Card, chip: Chip, name: str) -> None:
        self.card = card
        self.chip = chip
        self.name = name

    @property
    def atr(self) -> bytes:
        """Answer to reset."""
        return self.chip.atr

    def power_on(self) -> bytes:
        """Power on (or reset) and return the ATR."""
        with self.card.lock:
            if not self.card.present:
                raise CardRemovedError
            self.chip.power_on()
            return self.chip.atr

    def transmit(self, raw: bytes) -> bytes:
        """Send one command APDU; raises CardRemovedError when the card is gone (or torn)."""
        return self.card.exchange(self, bytes(raw))


class Card:
    """A dual-interface virtual card with one shared, optionally persisted, state."""

    def __init__(
        self,
        data: dict[str, Any],
        *,
        path: Path | None = None,
        rng: Rng = secrets.token_bytes,
        keygen: Callable[[], rsa.RSAPrivateKey] | None = None,
        apdu_delay_ms: float = 0.0,
        key_delay_ms: float = 0.0,
    ) -> None:
        self.path = path
        self.product = str(data["product"])
        self.lock = threading.RLock()
        self.present = True
        self.faults = Faults()
        self.apdu_count = 0
        self.apdu_delay_ms = apdu_delay_ms
        self.key_delay_ms = key_delay_ms
        self._keygen = keygen or KeyPool()
        profile = contact.CPS4_PROFILE if self.product == "cps4" else contact.CPS3_PROFILE
        self.contact_chip = contact.ContactChip(
            contact.ContactState.from_json(data["contact"]),
            profile,
            rng=rng,
            keygen=self._generate_key,
        )
        self.desfire_chip: desfire.DesfireChip | None = None
        if data.get("desfire") is not None:
            self.desfire_chip = desfire.DesfireChip(
                desfire.DesfireState.from_json(data["desfire"]), rng=rng
            )
        self.contact = Interface(self, self.contact_chip, "contact")
        self.contactless = (
            Interface(self, self.desfire_chip, "contactless") if self.desfire_chip else None
        )

    @classmethod
    def open(
        cls,
        path: Path,
        product: str = "cps4",
        *,
        blank: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Card:
        """The card kept in ``path``; a new blank card of ``product`` is made there if missing
        (``blank``: keyword arguments of ``blank_state``)."""
        if path.exists():
            data = load_state(path)
        else:
            data = blank_state(product, **(blank or {}))
            save_state(path, data)
        return cls(data, path=path, **kwargs)

    @classmethod
    def blank(
        cls, product: str = "cps4", *, blank: dict[str, Any] | None = None, **kwargs: Any
    ) -> Card:
        """A new blank card held in memory only (``blank``: keyword arguments of
        ``blank_state``)."""
        return cls(blank_state(product, **(blank or {})), **kwargs)

    @property
    def serial(self) -> bytes:
        """Content of EF.SN.ICC (also the SCP03 key diversification data)."""
        return self.contact_chip.state.serial

    def to_json(self) -> dict[str, Any]:
        """The persistent state."""
        return {
            "format": STATE_FORMAT,
            "product": self.product,
            "contact": self.contact_chip.state.to_json(),
            "desfire": None if self.desfire_chip is None else self.desfire_chip.state.to_json(),
        }

    def transmit(self, raw: bytes) -> bytes:
        """Contact interface shortcut."""
        return self.contact.transmit(raw)

    def remove(self) -> None:
        """Take the card out of the reader (runtime state is lost)."""
        with self.lock:
            self.present = False

    def insert(self) -> None:
        """Put the card back; the reader powers it up again."""
        with self.lock:
            self.present = True
            self.contact_chip.power_on()
            if self.desfire_chip is not None:
                self.desfire_chip.power_on()

    def _generate_key(self) -> rsa.RSAPrivateKey:
        if self.key_delay_ms:
            time.sleep(self.key_delay_ms / 1000)
        return self._keygen()

    def exchange(self, interface: Interface, raw: bytes) -> bytes:
        """Run one APDU through faults, delays, the chip, persistence and the log."""
        with self.lock:
            if not self.present:
                raise CardRemovedError
            self.apdu_count += 1
            number = self.apdu_count
            faults = self.faults
            if faults.tear_at == number:
                faults.tear_at = None
                if faults.tear_executes:
                    interface.chip.transmit(raw)
                    self._persist(interface.chip)
                self.present = False
                log.debug("%s #%d torn", interface.name, number)
                raise CardRemovedError
            forced = faults.sw_at.pop(number, None)
            if forced is not None:
                response = forced.to_bytes(2, "big")
            else:
                if self.apdu_delay_ms:
                    time.sleep(self.apdu_delay_ms / 1000)
                response = interface.chip.transmit(raw)
                self._persist(interface.chip)
            bit = faults.flip_at.pop(number, None)
            if bit is not None and response:
                index = (bit // 8) % len(response)
                flipped = bytearray(response)
                flipped[index] ^= 1 << (bit % 8)
                response = bytes(flipped)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s #%d %s", interface.name, number, describe(raw, response))
            return response

    def _persist(self, chip: Chip) -> None:
        if not chip.dirty:
            return
        chip.dirty = False
        if self.path is not None:
            save_state(self.path, self.to_json())


_LOGGED_DATA_INS = {0xA4, 0xB0, 0xC0, 0xCA, 0xF2}


def describe(raw: bytes, response: bytes) -> str:
    """One log line for an exchange: header, lengths and status; data only for harmless commands."""
    header = raw[:4].hex().upper()
    sw = response[-2:].hex().upper()
    text = f"{header} Lc={max(len(raw) - 5, 0)} -> {sw} ({max(len(response) - 2, 0)} bytes)"
    if len(raw) >= 4 and raw[0] & 0x0C == 0 and raw[0] != 0x90 and raw[1] in _LOGGED_DATA_INS:
        text += f" cmd={raw[4:].hex()} resp={response[:-2].hex()}"
    return text


class InProcessReader:
    """A reader slot holding one side of an in-process card, with the host library's transport
    contract: a torn or removed card is a ``cards.errors.TransportError``, as over PC/SC."""

    def __init__(self, interface: Interface) -> None:
        self.interface = interface

    def transmit(self, apdu: bytes) -> bytes:
        try:
            return bytes(self.interface.transmit(apdu))
        except CardRemovedError:
            raise TransportError("card removed") from None
