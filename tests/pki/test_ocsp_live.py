"""OCSP answers the pre-signed table cannot give: nonce, SHA-256 CertID, unknown serial."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from django.test import Client, override_settings

from core.actors import Actor
from pki import services
from pki.choices import CrlKind
from pki.domain import builders
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

    # openssl sends a nonce by default; RFC 5019 (ADR 0019): the pre-signed answer, no nonce
    # echoed, which openssl accepts with a warning
    with_nonce = openssl("ocsp", *common, "-cert", cert_pem)
    assert "Response verify OK" in with_nonce.stderr, with_nonce.stderr
    assert "WARNING: no nonce in response" in with_nonce.stderr, with_nonce.stderr
    assert f"{cert_pem}: good" in with_nonce.stdout
    stored = Certificate.objects.get(pk=cert.pk).ocsp_response.der
    answer_file = tmp_path / "nonce.resp"
    openssl("ocsp", *common, "-cert", cert_pem, "-respout", answer_file)
    assert answer_file.read_bytes() == bytes(stored)

    # opted in: the nonce is echoed and verified, no warning
    with override_settings(PKI_OCSP_NONCE_SIGNING=True):
        echoed = openssl("ocsp", *common, "-cert", cert_pem)
    assert "Response verify OK" in echoed.stderr, echoed.stderr
    assert "nonce" not in echoed.stderr.lower(), echoed.stderr
    assert f"{cert_pem}: good" in echoed.stdout

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

    # several certificates in one request: RFC 5019 §2.1.1 malformedRequest (HTTP 200, so
    # openssl reads it), never an HTTP 500; each certificate alone is still answered
    for extra in ((), ("-no_nonce",)):
        several = openssl("ocsp", *common, "-cert", cert_pem, "-serial", "0x1234abcd", *extra)
        assert "Responder Error: malformedrequest (1)" in several.stdout + several.stderr, (
            several.stdout + several.stderr
        )
        assert "500" not in several.stderr, several.stderr


def _issued_pair(n: int) -> tuple[Certificate, x509.Certificate, x509.Certificate]:
    row = _issue(n)
    cert = x509.load_der_x509_certificate(bytes(row.der))
    issuer = x509.load_der_x509_certificate(
        bytes(CertificateAuthority.objects.get(short_name=ISSUING).certificate_der)
    )
    return row, cert, issuer


def _nonce_of(answer: ocsp.OCSPResponse) -> bytes | None:
    try:
        return answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None


def test_a_nonce_flood_costs_no_signature_by_default(
    pki_software: str, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 §7: each nonce request used to cost a fresh RSA signature, unauthenticated and
    unlimited. By default (RFC 5019) the nonce is ignored and the pre-signed answer served."""
    row, cert, issuer = _issued_pair(22)
    stored = bytes(Certificate.objects.get(pk=row.pk).ocsp_response.der)
    signatures = []
    real_sign = builders.ocsp_answer_sign
    monkeypatch.setattr(
        builders, "ocsp_answer_sign", lambda *a, **k: signatures.append(1) or real_sign(*a, **k)
    )
    for _ in range(50):
        reply = client.post(
            "/ocsp", _request(cert, issuer, nonce=os.urandom(16)),
            content_type="application/ocsp-request",
        )  # fmt: skip
        assert reply.content == stored
        assert "max-age=" in reply["Cache-Control"]
    assert signatures == []
    answer = ocsp.load_der_ocsp_response(reply.content)
    assert _nonce_of(answer) is None
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD


def test_opted_in_nonces_are_echoed_within_a_rate_per_client(
    pki_software: str, client: Client, settings: Any
) -> None:
    settings.PKI_OCSP_NONCE_SIGNING = True
    settings.PKI_OCSP_NONCE_RATE = 3
    from django.core.cache import cache

    cache.clear()
    row, cert, issuer = _issued_pair(23)
    stored = bytes(Certificate.objects.get(pk=row.pk).ocsp_response.der)

    def ask(address: str) -> tuple[Any, bytes]:
        nonce = os.urandom(16)
        reply = client.post(
            "/ocsp", _request(cert, issuer, nonce=nonce),
            content_type="application/ocsp-request", REMOTE_ADDR=address,
        )  # fmt: skip
        return reply, nonce

    for _ in range(3):
        reply, nonce = ask("192.0.2.10")
        answer = ocsp.load_der_ocsp_response(reply.content)
        assert _nonce_of(answer) == nonce
        assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert reply["Cache-Control"] == "no-store"
    # over the rate: this client gets the pre-signed answer (no nonce, no signature)
    reply, _ = ask("192.0.2.10")
    assert reply.content == stored
    # another client still has its own allowance
    reply, nonce = ask("192.0.2.11")
    assert _nonce_of(ocsp.load_der_ocsp_response(reply.content)) == nonce

    plain = _post(client, _request(cert, issuer))
    assert plain.public_bytes(serialization.Encoding.DER) == stored  # the pre-signed answer
    assert _nonce_of(plain) is None


def test_client_address_behind_a_declared_proxy(settings: Any) -> None:
    from pki.responder import client_of

    settings.CMS_TRUSTED_PROXIES = ["127.0.0.1"]
    forwarded = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "10.0.0.1, 198.51.100.7"}
    assert client_of(forwarded) == "198.51.100.7"
    # a header from anyone else is not believed
    assert client_of({**forwarded, "REMOTE_ADDR": "203.0.113.5"}) == "203.0.113.5"
    assert client_of({"REMOTE_ADDR": "127.0.0.1"}) == "127.0.0.1"


def test_public_endpoints_never_load_a_ca_key(
    pki_software: str, client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pki/views.py and pki/authorities.py say so (issue 11 §7): every live path of /ocsp, the
    CRLs and CA certificates answer with the CA keys out of reach."""
    from pki import authorities

    _, cert, issuer = _issued_pair(24)
    services.crl_publish(authority=ISSUING, kind=CrlKind.FULL, actor=ACTOR)

    def no_ca_key(self: Any) -> Any:
        raise AssertionError("a CA key was loaded by a public endpoint")

    monkeypatch.setattr(authorities.AuthorityContext, "issuer", no_ca_key)
    settings.PKI_OCSP_NONCE_SIGNING = True
    for body in (
        _request(cert, issuer, nonce=os.urandom(16)),
        _request(cert, issuer, algorithm=hashes.SHA256()),
        _request(cert, issuer),
    ):
        answer = _post(client, body)
        assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert client.get(f"/pki/ca/{ISSUING}.cer").status_code == 200
    assert client.get(f"/pki/crl/{ISSUING}.crl").status_code == 200


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
