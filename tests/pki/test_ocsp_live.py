"""OCSP answers the pre-signed table cannot give: nonce, SHA-256 CertID, unknown serial."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from django.test import Client

from core.actors import Actor
from pki import services
from pki.domain.reasons import RevocationReason
from pki.models import Certificate, CertificateAuthority
from tests.pki.helpers import ISSUING, ROOT, holder, openssl, pem, write
from tests.pki.keys_pool import rsa_key

ACTOR = Actor.system("tests")


def _issue(n: int) -> Certificate:
    return services.certificate_issue(
        authority=ISSUING,
        profile="cps_auth",
        public_key=rsa_key(f"holder{n}").public_key(),
        holder=holder(n),
        actor=ACTOR,
    )


def _request(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    algorithm: hashes.HashAlgorithm | None = None,
    nonce: bytes | None = None,
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        cert,
        issuer,
        algorithm or hashes.SHA1(),
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _post(client: Client, body: bytes) -> ocsp.OCSPResponse:
    reply = client.post("/ocsp", body, content_type="application/ocsp-request")
    assert reply["Content-Type"] == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(reply.content)


@pytest.mark.django_db(transaction=True)
def test_openssl_nonce_sha256_and_unknown_serial(
    pki_software: str, live_server: Any, tmp_path: Path
) -> None:
    root = CertificateAuthority.objects.get(short_name=ROOT)
    issuing = CertificateAuthority.objects.get(short_name=ISSUING)
    issuing_pem = write(tmp_path / "issuing.pem", pem(issuing.certificate_der))
    write(tmp_path / "chain.pem", pem(root.certificate_der) + issuing_pem.read_bytes())
    cert = _issue(21)
    cert_pem = write(tmp_path / "c.pem", pem(cert.der))
    url = f"{live_server.url}/ocsp"
    common = ("-issuer", issuing_pem, "-url", url, "-CAfile", tmp_path / "chain.pem")

    with_nonce = openssl("ocsp", *common, "-cert", cert_pem)  # openssl sends a nonce by default
    assert "Response verify OK" in with_nonce.stderr, with_nonce.stderr
    assert "nonce" not in with_nonce.stderr.lower()  # no "WARNING: no nonce in response"
    assert f"{cert_pem}: good" in with_nonce.stdout

    sha256 = openssl("ocsp", *common, "-sha256", "-cert", cert_pem, "-no_nonce")
    assert "Response verify OK" in sha256.stderr, sha256.stderr
    assert f"{cert_pem}: good" in sha256.stdout

    services.certificate_revoke(
        certificate_id=cert.pk, reason=RevocationReason.KEY_COMPROMISE, actor=ACTOR
    )
    revoked = openssl("ocsp", *common, "-sha256", "-cert", cert_pem)
    assert f"{cert_pem}: revoked" in revoked.stdout
    assert "keyCompromise" in revoked.stdout

    unknown = openssl("ocsp", *common, "-serial", "0x1234abcd")
    assert "Response verify OK" in unknown.stderr, unknown.stderr
    assert "0x1234abcd: unknown" in unknown.stdout


def test_nonce_is_echoed_and_answer_not_cached(pki_software: str, client: Client) -> None:
    row = _issue(22)
    cert = x509.load_der_x509_certificate(bytes(row.der))
    issuer = x509.load_der_x509_certificate(
        bytes(CertificateAuthority.objects.get(short_name=ISSUING).certificate_der)
    )
    nonce = os.urandom(16)
    reply = client.post(
        "/ocsp", _request(cert, issuer, nonce=nonce), content_type="application/ocsp-request"
    )
    assert reply["Cache-Control"] == "no-store"
    answer = ocsp.load_der_ocsp_response(reply.content)
    assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD

    plain = _post(client, _request(cert, issuer))
    stored = bytes(Certificate.objects.get(pk=row.pk).ocsp_response.der)
    assert plain.public_bytes(serialization.Encoding.DER) == stored  # the pre-signed answer
    with pytest.raises(x509.ExtensionNotFound):
        plain.extensions.get_extension_for_class(x509.OCSPNonce)


def test_unknown_serial_and_foreign_issuer(pki_software: str, client: Client) -> None:
    ca = CertificateAuthority.objects.get(short_name=ISSUING)
    issuer = x509.load_der_x509_certificate(bytes(ca.certificate_der))
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        bytes.fromhex(ca.issuer_name_hash),
        bytes.fromhex(ca.issuer_key_hash),
        0xDEADBEEF,
        hashes.SHA1(),
    )
    answer = _post(client, builder.build().public_bytes(serialization.Encoding.DER))
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    assert answer.serial_number == 0xDEADBEEF
    assert ca.ocsp_responder is not None
    responder = x509.load_der_x509_certificate(bytes(ca.ocsp_responder.der))
    assert answer.responder_key_hash == (
        x509.SubjectKeyIdentifier.from_public_key(responder.public_key()).digest
    )
    assert answer.certificates[0] == responder
    assert issuer.subject == responder.issuer

    foreign = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        b"\x01" * 20, b"\x02" * 20, 5, hashes.SHA1()
    )
    refused = _post(client, foreign.build().public_bytes(serialization.Encoding.DER))
    assert refused.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_live_signing_off_serves_presigned_only(
    pki_software: str, client: Client, settings: Any
) -> None:
    settings.PKI_OCSP_LIVE_SIGNING = False
    row = _issue(23)
    cert = x509.load_der_x509_certificate(bytes(row.der))
    issuer = x509.load_der_x509_certificate(
        bytes(CertificateAuthority.objects.get(short_name=ISSUING).certificate_der)
    )
    with_nonce = _post(client, _request(cert, issuer, nonce=b"0123456789abcdef"))
    assert with_nonce.certificate_status is ocsp.OCSPCertStatus.GOOD
    with pytest.raises(x509.ExtensionNotFound):  # pre-signed: the nonce is not echoed
        with_nonce.extensions.get_extension_for_class(x509.OCSPNonce)
    sha256 = _post(client, _request(cert, issuer, algorithm=hashes.SHA256()))
    assert sha256.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
