"""The client certificate nginx passes on: its fingerprint is remembered by the header's exact
text (ADR 0033), while who passed it on and whether nginx verified it are checked every time."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from api.authentication import _escaped_pem_sha256, presented_certificate_sha256
from tests.pki.keys_pool import rsa_key

PROXY = "10.9.8.7"


def _certificate(name: str) -> x509.Certificate:
    key = rsa_key(name)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def _meta(
    cert: x509.Certificate, *, remote: str = PROXY, verify: str = "SUCCESS"
) -> dict[str, Any]:
    return {
        "REMOTE_ADDR": remote,
        "HTTP_X_SSL_CLIENT_VERIFY": verify,
        "HTTP_X_SSL_CLIENT_CERT": quote(cert.public_bytes(Encoding.PEM).decode()),
    }


def test_each_certificate_has_its_own_fingerprint_and_the_checks_run_every_time(
    settings: Any,
) -> None:
    settings.CMS_TRUSTED_PROXIES = [PROXY]
    _escaped_pem_sha256.cache_clear()
    first, second = _certificate("station-a"), _certificate("station-b")
    expected = hashlib.sha256(first.public_bytes(Encoding.DER)).hexdigest()

    assert presented_certificate_sha256(_meta(first)) == expected
    assert presented_certificate_sha256(_meta(first)) == expected  # remembered
    assert _escaped_pem_sha256.cache_info().hits == 1
    assert presented_certificate_sha256(_meta(second)) == (
        hashlib.sha256(second.public_bytes(Encoding.DER)).hexdigest()
    )
    # the same, remembered, header: refused from an undeclared address or unverified
    assert presented_certificate_sha256(_meta(first, remote="127.0.0.2")) is None
    assert presented_certificate_sha256(_meta(first, verify="FAILED:bad")) is None
    assert presented_certificate_sha256(_meta(first, verify="NONE")) is None


def test_a_header_that_is_not_a_certificate_gives_no_fingerprint(settings: Any) -> None:
    settings.CMS_TRUSTED_PROXIES = [PROXY]
    meta = {"REMOTE_ADDR": PROXY, "HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS"}
    assert presented_certificate_sha256(meta) is None
    assert (
        presented_certificate_sha256({**meta, "HTTP_X_SSL_CLIENT_CERT": "not%20a%20cert"}) is None
    )
    assert presented_certificate_sha256({**meta, "HTTP_X_SSL_CLIENT_CERT": "%C3%A9"}) is None
