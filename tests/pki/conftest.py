from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from tests.pki.softhsm import SoftHsm, softhsm_token

PASSPHRASE_ENV = "PKI_TEST_KEY_PASSPHRASE"
TEST_HIERARCHY = Path(__file__).parent / "fixtures" / "test_hierarchy.toml"


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsm:
    """One SoftHSM2 token for the whole session."""
    return softhsm_token(Path(tmp_path_factory.mktemp("softhsm")))


@pytest.fixture(scope="session")
def software_key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CA keys generated once per session; each test's pki_init reuses them."""
    return Path(tmp_path_factory.mktemp("pki-keys"))


def _backends(key_dir: Path, hsm: SoftHsm | None) -> dict[str, dict[str, object]]:
    config: dict[str, dict[str, object]] = {
        "software": {
            "BACKEND": "pki.keys.software.SoftwareKeyBackend",
            "OPTIONS": {"location": str(key_dir), "passphrase_env": PASSPHRASE_ENV},
        }
    }
    if hsm is not None:
        config["pkcs11"] = {
            "BACKEND": "pki.keys.pkcs11.Pkcs11KeyBackend",
            "OPTIONS": {
                "module": hsm.module,
                "token_label": hsm.token_label,
                "pin_env": hsm.pin_env,
                "pool_size": 2,
            },
        }
    return config


def _init(backend: str) -> None:
    from django.core.management import call_command

    call_command("pki_init", config=str(TEST_HIERARCHY), backend=backend, stdout=io.StringIO())


@pytest.fixture
def pki_software(
    db: None, settings: Any, software_key_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The test hierarchy on the software backend; returns the backend alias."""
    monkeypatch.setenv(PASSPHRASE_ENV, "test-passphrase-not-secret")
    settings.PKI_KEY_BACKENDS = _backends(software_key_dir, None)
    settings.PKI_PUBLIC_BASE_URL = "http://pki.cps-cms.test"
    _init("software")
    return "software"


@pytest.fixture
def pki_hsm(
    db: None,
    settings: Any,
    software_key_dir: Path,
    softhsm: SoftHsm,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """The test hierarchy with every CA key in SoftHSM2; returns the backend alias."""
    monkeypatch.setenv(PASSPHRASE_ENV, "test-passphrase-not-secret")
    settings.PKI_KEY_BACKENDS = _backends(software_key_dir, softhsm)
    settings.PKI_PUBLIC_BASE_URL = "http://pki.cps-cms.test"
    _init("pkcs11")
    return "pkcs11"
