"""The card key store as the personalization session uses it: per-card keys, sealing.

Configured by ``settings.CARD_KEY_STORE`` (``{"BACKEND": "software"|"pkcs11", "OPTIONS": …}``);
the default is the software store in ``VAR_DIR/card-keys`` under the ``PKI_KEY_PASSPHRASE``
passphrase. ``card_keys_provision`` creates the masters of the embedded default: the SCP03 issuer
master is the *published test master* of card-protocols.md §3 (blank virtual cards are made with
it); the DESFire, admin and sealing masters are random. Production stores are filled at a key
ceremony instead (``settings.CARD_KEYS_TEST_PROVISIONING = False`` refuses the test master).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from cards.desfire import aid_bytes
from cards.products import Product
from cards.scp03 import Scp03StaticKeys
from core.errors import PolicyViolation, ServiceUnavailable
from pki.keys.errors import KeyBackendError, KeyBackendUnavailable, KeyNotFound
from pki.keys.symmetric import (
    CardKeyStore,
    admin_key,
    an10922_key,
    card_key_store_create,
    master_label,
    scp03_card_keys,
    sealing_key,
)

# card-protocols.md §3: the published GlobalPlatform diversification test master. Never a
# production key; blank virtual cards (cardsim) are made with it.
TEST_SCP03_MASTER = bytes.fromhex(
    "8C72C72CF908411653018807950D82FBAD947562F0828A0B10B8B9606ABF3BCD"
)
# The DESFire factory PICC master key (AES, all zeros) is the transport key of version 0: public,
# refused unless settings.DESFIRE_FACTORY_TRANSPORT_KEY (never in production).
FACTORY_TRANSPORT_KEY = bytes(16)
TRANSPORT_PURPOSE = "desfire-transport"
# The test vendor's transport master (cardsim makes blank cards with it, as version 1). Public:
# the embedded default and the tests import it; production imports a vendor's at a ceremony.
TEST_TRANSPORT_MASTER = bytes.fromhex("5452414E53504F52542D544553542D31")
TEST_TRANSPORT_VERSION = 1
# The master of the per-card key a new DESFire application is created with (SetConfiguration
# option 01 before CreateApplication; ADR 0018).
APP_INITIAL_PURPOSE = "desfire-app-initial"
SEAL_VERSION = 1

_stores: dict[str, CardKeyStore] = {}
_lock = threading.Lock()


def _config() -> dict[str, Any]:
    default = {
        "BACKEND": "software",
        "OPTIONS": {
            "location": str(Path(settings.VAR_DIR) / "card-keys"),
            "passphrase_env": "PKI_KEY_PASSPHRASE",
        },
    }
    return dict(getattr(settings, "CARD_KEY_STORE", default))


def card_key_store() -> CardKeyStore:
    """The configured store (one instance per configuration and process)."""
    config = _config()
    cache_key = json.dumps(config, sort_keys=True, default=str)
    with _lock:
        store = _stores.get(cache_key)
        if store is None:
            store = card_key_store_create("card-keys", config)
            _stores[cache_key] = store
    return store


@dataclass(frozen=True)
class KeyVersions:
    """Master key versions a card is written with (recorded on the session)."""

    scp03: int
    picc: int
    app: dict[int, int] = field(default_factory=dict)
    admin: int = 1
    transport: int = 0
    app_initial: int = 1

    @classmethod
    def for_product(cls, product: Product, transport: int) -> KeyVersions:
        assert product.scp03 is not None and product.desfire is not None
        return cls(
            scp03=product.scp03.kvn,
            picc=product.desfire.picc_key_version,
            app={k.key_no: k.version for k in product.desfire.keys},
            admin=product.admin_key_version or 0,
            transport=transport,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "scp03": self.scp03,
            "picc": self.picc,
            "app": {str(k): v for k, v in self.app.items()},
            "admin": self.admin,
            "transport": self.transport,
            "app_initial": self.app_initial,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyVersions:
        return cls(
            scp03=int(data["scp03"]),
            picc=int(data["picc"]),
            app={int(k): int(v) for k, v in data["app"].items()},
            admin=int(data["admin"]),
            transport=int(data["transport"]),
            app_initial=int(data.get("app_initial", 1)),
        )


def _labels(product: Product, versions: KeyVersions) -> dict[str, str]:
    assert product.desfire is not None
    labels = {
        "scp03": master_label("scp03-issuer", versions.scp03),
        "picc": master_label("desfire-picc", versions.picc),
        "admin": master_label("admin", versions.admin),
        "seal": master_label("seal", SEAL_VERSION),
        "app_initial": master_label(APP_INITIAL_PURPOSE, versions.app_initial),
    }
    for key_no, version in versions.app.items():
        labels[f"app{key_no}"] = master_label(f"desfire-app-{key_no}", version)
    return labels


def _translate(exc: KeyBackendError) -> Exception:
    if isinstance(exc, KeyBackendUnavailable):
        return ServiceUnavailable(f"The card key store is unavailable: {exc}")
    return ServiceUnavailable(f"The card key store refused: {exc}")


def card_keys_provision(product: Product, *, test: bool | None = None) -> list[str]:
    """Create the missing masters of ``product`` (embedded default / tests); returns the labels
    created. The SCP03 issuer master becomes the published test master."""
    if test is None:
        test = bool(settings.CARD_KEYS_TEST_PROVISIONING)
    if not test:
        raise PolicyViolation(
            "Test card keys are not provisioned here; import the masters at a key ceremony."
        )
    store = card_key_store()
    created = []
    try:
        store.check()
        for name, label in _labels(product, KeyVersions.for_product(product, 0)).items():
            if store.has_key(label):
                continue
            if name == "scp03":
                store.import_key(label, TEST_SCP03_MASTER)
            else:
                store.generate(label, length=32 if name == "seal" else 16)
            created.append(label)
        transport = master_label(TRANSPORT_PURPOSE, TEST_TRANSPORT_VERSION)
        if not store.has_key(transport):
            store.import_key(transport, TEST_TRANSPORT_MASTER)
            created.append(transport)
    except KeyBackendError as exc:
        raise _translate(exc) from None
    return created


@dataclass(frozen=True)
class CardKeys:
    """The per-card keys of one CPS4 card; never persisted, never logged."""

    scp03: Scp03StaticKeys = field(repr=False)
    transport: bytes = field(repr=False)
    picc: bytes = field(repr=False)
    app: dict[int, bytes] = field(repr=False)
    admin: bytes = field(repr=False)
    app_initial: bytes = field(repr=False)


def transport_version_check(version: int) -> None:
    """PolicyViolation unless cards of transport key ``version`` can be personalized here: the
    factory key (0) only where settings.DESFIRE_FACTORY_TRANSPORT_KEY allows it (never in
    production), version N only with its master in the card key store."""
    if version == 0:
        if not settings.DESFIRE_FACTORY_TRANSPORT_KEY:
            raise PolicyViolation(
                "Transport key version 0 is the public factory PICC key: a station relaying its "
                "session would learn every key written. Order cards with a vendor transport key."
            )
        return
    if not 1 <= version <= 255:
        raise PolicyViolation("Transport key versions are 0 to 255.")
    store = card_key_store()
    try:
        present = store.has_key(master_label(TRANSPORT_PURPOSE, version))
    except KeyBackendError as exc:
        raise _translate(exc) from None
    if not present:
        raise PolicyViolation(
            f"No DESFire transport master of version {version} in the card key store; import it "
            f"with manage.py card_keys_import_transport --version {version}."
        )


def transport_key(version: int, *, m: bytes) -> bytes:
    """A blank card's DESFire transport (PICC) key. Version 0 is the factory default (zeros);
    version N is diversified per card by AN10922 from the master ``desfire-transport.vN`` of the
    card key store over ``m`` (UID ‖ AID 000000 ‖ system id, as the PICC key), so no transport
    key sits in clear in the settings (``manage.py card_keys_import_transport``)."""
    if version == 0:
        transport_version_check(0)
        return FACTORY_TRANSPORT_KEY
    store = card_key_store()
    try:
        return an10922_key(store, master_label(TRANSPORT_PURPOSE, version), m)
    except KeyNotFound:
        raise PolicyViolation(
            f"No DESFire transport master of version {version} in the card key store; import it "
            f"with manage.py card_keys_import_transport --version {version}."
        ) from None
    except KeyBackendError as exc:
        raise _translate(exc) from None


def transport_master_import(*, version: int, key: bytes) -> str:
    """Store a vendor's DESFire transport master of ``version`` (1-255); returns its label."""
    if not 1 <= version <= 255:
        raise PolicyViolation("Transport key version 0 is the factory key; import 1 to 255.")
    if len(key) != 16:
        raise PolicyViolation("A DESFire transport master is an AES-128 key: 32 hex digits.")
    store = card_key_store()
    label = master_label(TRANSPORT_PURPOSE, version)
    try:
        store.check()
        if store.has_key(label):
            raise PolicyViolation(f"The card key store already holds {label}; it is not replaced.")
        store.import_key(label, key)
    except KeyBackendError as exc:
        raise _translate(exc) from None
    return label


def card_keys_derive(
    *, product: Product, versions: KeyVersions, kdd: bytes, serial: bytes, uid: bytes
) -> CardKeys:
    """Diversify every master for one card (SCP03 by KDD, DESFire by AN10922, admin by serial)."""
    assert product.scp03 is not None and product.desfire is not None
    store = card_key_store()
    labels = _labels(product, versions)
    app = product.desfire
    picc_m = uid + aid_bytes(0) + app.system_identifier
    try:
        scp = scp03_card_keys(store, labels["scp03"], kdd, length=product.scp03.key_length)
        picc = an10922_key(store, labels["picc"], picc_m)
        m = uid + aid_bytes(app.aid) + app.system_identifier
        app_keys = {k: an10922_key(store, labels[f"app{k}"], m) for k in versions.app}
        app_initial = an10922_key(store, labels["app_initial"], m)
        admin = admin_key(store, labels["admin"], serial, versions.admin)
    except KeyBackendError as exc:
        raise _translate(exc) from None
    return CardKeys(
        scp03=Scp03StaticKeys(scp["enc"], scp["mac"], scp["dek"], kvn=versions.scp03),
        transport=transport_key(versions.transport, m=picc_m),
        picc=picc,
        app=app_keys,
        admin=admin,
        app_initial=app_initial,
    )


def scp03_keys_derive(*, product: Product, version: int, kdd: bytes) -> Scp03StaticKeys:
    """The card's static SCP03 keys alone (an issued card's secure channel: new codes)."""
    assert product.scp03 is not None
    try:
        scp = scp03_card_keys(
            card_key_store(),
            master_label("scp03-issuer", version),
            kdd,
            length=product.scp03.key_length,
        )
    except KeyBackendError as exc:
        raise _translate(exc) from None
    return Scp03StaticKeys(scp["enc"], scp["mac"], scp["dek"], kvn=version)


def _seal_key(context: str) -> bytes:
    store = card_key_store()
    try:
        return sealing_key(store, master_label("seal", SEAL_VERSION), context.encode())
    except KeyBackendError as exc:
        raise _translate(exc) from None


def seal(data: bytes, *, context: str) -> bytes:
    """AES-256-GCM under a key derived for ``context`` (a session or mailer id)."""
    nonce = secrets.token_bytes(12)
    aad = hashlib.sha256(context.encode()).digest()
    return nonce + AESGCM(_seal_key(context)).encrypt(nonce, data, aad)


def unseal(sealed: bytes, *, context: str) -> bytes:
    """Inverse of ``seal``; ServiceUnavailable if the data or the key does not match."""
    aad = hashlib.sha256(context.encode()).digest()
    try:
        return AESGCM(_seal_key(context)).decrypt(sealed[:12], sealed[12:], aad)
    except InvalidTag:
        raise ServiceUnavailable(
            "Sealed data does not open with the current sealing key (was the store replaced?)."
        ) from None
