"""The card key store: diversification equals the card library's (vector-checked) functions,
masters stay encrypted at rest, and the PKCS#11 store computes the same keys on SoftHSM2."""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path

import pytest

from cards import crypto
from pki.keys.symmetric import (
    SoftwareCardKeyStore,
    admin_key,
    an10922_key,
    scp03_card_keys,
)

MASTER = bytes.fromhex("8C72C72CF908411653018807950D82FBAD947562F0828A0B10B8B9606ABF3BCD")
KDD = bytes.fromhex("D9B1DE5D0362DEDCE4FB")
PASS_ENV = "CARD_KEYS_UNIT_PASSPHRASE"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SoftwareCardKeyStore:
    monkeypatch.setenv(PASS_ENV, "unit-test-passphrase")
    store = SoftwareCardKeyStore("t", location=str(tmp_path), passphrase_env=PASS_ENV)
    store.import_key("scp03-issuer.v48", MASTER)
    store.import_key("desfire-app-1.v1", bytes.fromhex("00112233445566778899AABBCCDDEEFF"))
    store.import_key("admin.v1", bytes(range(32)))
    return store


def test_scp03_keys_match_the_published_vector(store: SoftwareCardKeyStore) -> None:
    keys = scp03_card_keys(store, "scp03-issuer.v48", KDD, length=32)
    assert keys["enc"] == bytes.fromhex(
        "9AAC5D0B3601F89438A0D9D0B6B256CFB47E6462DFA5228D3420C4AC7C224781"
    )
    short = scp03_card_keys(store, "scp03-issuer.v48", KDD)
    assert short["mac"] == crypto.scp03_diversify_key(MASTER, KDD, crypto.SCP03_DIVERSIFY_MAC, 16)


def test_an10922_and_admin_keys_match_the_card_library(store: SoftwareCardKeyStore) -> None:
    master = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    m = crypto.an10922_input(bytes.fromhex("04782E21801D80"), bytes.fromhex("3042F5"), b"ANS-CPS4")
    assert an10922_key(store, "desfire-app-1.v1", m) == crypto.an10922_diversify_aes128(master, m)
    serial = bytes.fromhex("80250000012600301701")
    assert admin_key(store, "admin.v1", serial, 1) == crypto.unblock_admin_key(
        bytes(range(32)), serial, 1
    )


def test_masters_are_encrypted_at_rest(store: SoftwareCardKeyStore, tmp_path: Path) -> None:
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert MASTER.hex().encode() not in stored.lower() and MASTER not in stored
    assert all(p.stat().st_mode & 0o077 == 0 for p in tmp_path.iterdir())


@pytest.mark.softhsm
def test_pkcs11_store_computes_the_same_keys(softhsm) -> None:
    from pki.keys.symmetric import Pkcs11CardKeyStore

    hsm = softhsm
    store = Pkcs11CardKeyStore(
        "hsm", module=hsm.module, token_label=hsm.token_label, pin_env=hsm.pin_env, pool_size=1
    )
    if not store.has_key("scp03-issuer.v48"):
        store.import_key("scp03-issuer.v48", MASTER)
    if not store.has_key("admin.v1"):
        store.generate("admin.v1", length=16)
    assert store.has_key("admin.v1") and os.environ.get(hsm.pin_env)
    keys = scp03_card_keys(store, "scp03-issuer.v48", KDD, length=32)
    assert keys["enc"].hex().upper().startswith("9AAC5D0B3601F894")


# DESFire transport masters in the card key store


def test_transport_masters_are_imported_from_stdin_and_diversified_per_card(
    card_keys, db, settings
):
    from django.core.management import CommandError, call_command

    from cards.crypto import an10922_diversify_aes128
    from cms.personalization.keys import FACTORY_TRANSPORT_KEY, transport_key
    from core.errors import PolicyViolation
    from core.models import AuditEvent

    version = 200 + secrets.randbelow(50)  # the key directory is shared by the session
    master = secrets.token_bytes(16)
    m = bytes.fromhex("04112233445566") + bytes(3) + b"ANS-CPS4"
    with pytest.raises(PolicyViolation, match=f"--version {version}"):
        transport_key(version, m=m)
    out = io.StringIO()
    call_command(
        "card_keys_import_transport",
        "--version",
        str(version),
        stdin=io.StringIO(master.hex() + "\n"),
        stdout=out,
    )
    assert f"desfire-transport.v{version}" in out.getvalue() and master.hex() not in out.getvalue()
    assert transport_key(version, m=m) == an10922_diversify_aes128(master, m)
    with pytest.raises(PolicyViolation, match="public factory PICC key"):
        transport_key(0, m=m)  # production and the default settings
    settings.DESFIRE_FACTORY_TRANSPORT_KEY = True  # a laboratory with factory cards only
    assert transport_key(0, m=m) == FACTORY_TRANSPORT_KEY
    event = AuditEvent.objects.get(action="card_keys.transport_import")
    assert master.hex() not in str(event.details) and event.details == {"version": version}
    with pytest.raises(CommandError, match="already holds"):
        call_command(
            "card_keys_import_transport", "--version", str(version), stdin=io.StringIO("00" * 16)
        )
    with pytest.raises(CommandError, match="factory"):
        call_command("card_keys_import_transport", "--version", "0", stdin=io.StringIO("00" * 16))
