from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from pki.keys.base import KeyBackend, backend_create
from pki.keys.errors import KeyBackendError, KeyBackendUnavailable, KeyNotFound
from tests.pki.softhsm import SoftHsm, extra_token

pytestmark = pytest.mark.softhsm
NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def _backend(softhsm: SoftHsm, **overrides: object) -> KeyBackend:
    options: dict[str, object] = {
        "module": softhsm.module,
        "token_label": softhsm.token_label,
        "pin_env": softhsm.pin_env,
        "pool_size": 2,
    }
    options.update(overrides)
    return backend_create(
        "hsm", {"hsm": {"BACKEND": "pki.keys.pkcs11.Pkcs11KeyBackend", "OPTIONS": options}}
    )


@pytest.fixture(scope="module")
def hsm_key(softhsm: SoftHsm) -> tuple[KeyBackend, str]:
    backend = _backend(softhsm)
    return backend, backend.generate_rsa(label="keys-test", key_size=2048)


def test_builders_sign_in_the_token(hsm_key: tuple[KeyBackend, str]) -> None:
    backend, handle = hsm_key
    key = backend.private_key(handle)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hsm")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert.verify_directly_issued_by(cert)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name)
        .last_update(NOW)
        .next_update(NOW + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    assert crl.is_signature_valid(key.public_key())
    resp = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=cert,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=NOW,
            next_update=None,
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, cert)
        .sign(key, hashes.SHA256())
    )
    key.public_key().verify(
        resp.signature, resp.tbs_response_bytes, padding.PKCS1v15(), hashes.SHA256()
    )


def test_pss_signature_in_the_token(hsm_key: tuple[KeyBackend, str]) -> None:
    backend, handle = hsm_key
    key = backend.private_key(handle)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    sig = key.sign(b"hello", pss, hashes.SHA256())
    key.public_key().verify(sig, b"hello", pss, hashes.SHA256())


def test_key_never_leaves_the_token(hsm_key: tuple[KeyBackend, str]) -> None:
    backend, handle = hsm_key
    key = backend.private_key(handle)
    with pytest.raises(KeyBackendError, match="cannot leave"):
        key.private_numbers()
    assert "pin" not in repr(key).lower()


def test_lookup_by_id_and_unknown_label(hsm_key: tuple[KeyBackend, str]) -> None:
    backend, _ = hsm_key
    by_id = backend.private_key("id:" + b"keys-test".hex())
    assert by_id.key_size == 2048
    with pytest.raises(KeyNotFound):
        backend.private_key("label:absent")
    assert not backend.has_key("label:absent")


def test_wrong_pin_is_unavailable(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> None:
    extra_token("wrong-pin-token", "123456")
    monkeypatch.setenv("PKI_TEST_WRONG_PIN", "000000")
    backend = _backend(softhsm, pin_env="PKI_TEST_WRONG_PIN", token_label="wrong-pin-token")
    with pytest.raises(KeyBackendUnavailable) as err:
        backend.check()
    assert "000000" not in str(err.value)


def test_unknown_token_is_unavailable(softhsm: SoftHsm) -> None:
    with pytest.raises(KeyBackendUnavailable, match="unreachable"):
        _backend(softhsm, token_label="no-such-token").check()
