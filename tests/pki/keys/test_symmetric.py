"""The software card key store says what is wrong with a master it cannot open, and only that:
a wrong passphrase, a damaged file and a missing passphrase are told apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pki.keys.errors import KeyBackendError, KeyBackendUnavailable, KeyNotFound
from pki.keys.symmetric import SoftwareCardKeyStore

PASS_ENV = "CARD_KEYS_ERRORS_PASSPHRASE"
LABEL = "admin.v1"
MASTER = bytes(range(16))


def _store(location: Path) -> SoftwareCardKeyStore:
    return SoftwareCardKeyStore("t", location=str(location), passphrase_env=PASS_ENV)


@pytest.fixture
def sealed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(PASS_ENV, "the-right-passphrase")
    _store(tmp_path).import_key(LABEL, MASTER)
    return tmp_path / f"{LABEL}.aes.json"


def test_the_right_passphrase_opens_the_master(sealed: Path) -> None:
    assert len(_store(sealed.parent).cmac(LABEL, b"data")) == 16


def test_a_wrong_passphrase_is_named(sealed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASS_ENV, "a-wrong-passphrase")
    with pytest.raises(KeyBackendError, match="wrong passphrase") as caught:
        _store(sealed.parent).cmac(LABEL, b"data")
    assert "a-wrong-passphrase" not in str(caught.value)


def test_a_missing_passphrase_is_unavailable_not_wrong(
    sealed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PASS_ENV)
    with pytest.raises(KeyBackendUnavailable, match=PASS_ENV):
        _store(sealed.parent).cmac(LABEL, b"data")


@pytest.mark.parametrize(
    "damage",
    [
        lambda record: "not json {",
        lambda record: json.dumps({**record, "nonce": "zz"}),
        lambda record: json.dumps({k: v for k, v in record.items() if k != "salt"}),
        lambda record: json.dumps([record]),
    ],
    ids=["not-json", "not-hex", "field-missing", "not-an-object"],
)
def test_a_damaged_file_is_named(sealed: Path, damage) -> None:
    sealed.write_text(damage(json.loads(sealed.read_text())))
    with pytest.raises(KeyBackendError, match="damaged file"):
        _store(sealed.parent).cmac(LABEL, b"data")


def test_an_absent_master_is_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASS_ENV, "the-right-passphrase")
    with pytest.raises(KeyNotFound):
        _store(tmp_path).cmac(LABEL, b"data")
