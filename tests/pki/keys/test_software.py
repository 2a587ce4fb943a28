from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import NameOID

from pki.keys.base import backend_create
from pki.keys.errors import KeyBackendError, KeyBackendUnavailable, KeyNotFound

ENV = "PKI_TEST_SOFT_PASSPHRASE"


def _config(tmp_path: Path) -> dict[str, dict[str, object]]:
    return {
        "soft": {
            "BACKEND": "pki.keys.software.SoftwareKeyBackend",
            "OPTIONS": {"location": str(tmp_path / "keys"), "passphrase_env": ENV},
        }
    }


def test_generate_sign_and_reload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "s3cret-passphrase")
    backend = backend_create("soft", _config(tmp_path))
    handle = backend.generate_rsa(label="ca-test", key_size=2048)
    assert backend.has_key(handle)
    pem = (tmp_path / "keys" / "ca-test.p8.pem").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in pem
    key = backend.private_key(handle)
    sig = key.sign(b"data", padding.PKCS1v15(), hashes.SHA256())
    again = backend_create("soft", _config(tmp_path)).private_key(handle)
    again.public_key().verify(sig, b"data", padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(KeyBackendError, match="already exists"):
        backend.generate_rsa(label="ca-test", key_size=2048)


def test_missing_passphrase_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    backend = backend_create("soft", _config(tmp_path))
    with pytest.raises(KeyBackendUnavailable, match=ENV):
        backend.generate_rsa(label="x", key_size=2048)


def test_wrong_passphrase_is_unavailable_without_leaking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "right-one")
    handle = backend_create("soft", _config(tmp_path)).generate_rsa(label="k", key_size=2048)
    monkeypatch.setenv(ENV, "wrong-one")
    with pytest.raises(KeyBackendUnavailable) as err:
        backend_create("soft", _config(tmp_path)).private_key(handle)
    assert "wrong-one" not in str(err.value)
    assert "right-one" not in str(err.value)


def test_unknown_key_and_alias(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "x")
    backend = backend_create("soft", _config(tmp_path))
    with pytest.raises(KeyNotFound):
        backend.private_key("nope")
    with pytest.raises(KeyBackendError, match="no key backend 'hsm'"):
        backend_create("hsm", _config(tmp_path))
    with pytest.raises(KeyBackendError, match="invalid key handle"):
        backend.private_key("../etc/passwd")


def test_builder_signs_with_software_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "x")
    backend = backend_create("soft", _config(tmp_path))
    key = backend.private_key(backend.generate_rsa(label="b", key_size=2048))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert.verify_directly_issued_by(cert)
