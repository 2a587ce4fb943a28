from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from django.core.management import CommandError, call_command
from django.test import Client

from core.models import AuditEvent
from pki.models import Certificate, CertificateAuthority
from tests.pki.helpers import ISSUING, csr_pem, write


def _issue_cmd(tmp_path: Path, csr: bytes, *extra: str) -> str:
    out = io.StringIO()
    call_command(
        "pki_issue",
        "--ca", ISSUING, "--profile", "cps_auth",
        "--csr", str(write(tmp_path / "req.pem", csr)), "--out", str(tmp_path / "out.pem"),
        "--national-id", "810002813839", "--surname", "DONNAT-GADY", "--given-name", "ISABELLE",
        "--title", "Médecin", "--card-serial", "2600301752", "--profession-code", "10",
        *extra,
        stdout=out,
    )  # fmt: skip
    return out.getvalue()


def test_pki_issue_and_revoke_commands(
    pki_software: str, tmp_path: Path, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _issue_cmd(tmp_path, csr_pem(), "--on-hold")
    cert = x509.load_pem_x509_certificate((tmp_path / "out.pem").read_bytes())
    row = Certificate.objects.get(serial=cert.serial_number)
    assert row.status == "on_hold"
    serial_hex = f"0x{cert.serial_number:x}"
    call_command(
        "pki_revoke", "--ca", ISSUING, "--serial", serial_hex, "--release", stdout=io.StringIO()
    )
    call_command(
        "pki_revoke", "--ca", ISSUING, "--serial", str(cert.serial_number),
        "--reason", "superseded", stdout=io.StringIO(),
    )  # fmt: skip
    row.refresh_from_db()
    assert row.status == "revoked"
    with pytest.raises(CommandError, match="already revoked"):
        call_command(
            "pki_revoke", "--ca", ISSUING, "--serial", serial_hex, "--reason", "superseded",
        )  # fmt: skip
    with pytest.raises(CommandError, match="no certificate with serial"):
        call_command("pki_revoke", "--ca", ISSUING, "--serial", "0x1234", "--reason", "superseded")


def test_pki_issue_refuses_bad_csrs_without_rows(pki_software: str, tmp_path: Path) -> None:
    before = (Certificate.objects.count(), AuditEvent.objects.count())
    with pytest.raises(CommandError, match="PKCS#10"):
        _issue_cmd(tmp_path, b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n")
    tampered = bytearray(x509.load_pem_x509_csr(csr_pem()).public_bytes(serialization.Encoding.DER))
    tampered[-3] ^= 0x01
    with pytest.raises(CommandError, match="signature"):
        _issue_cmd(tmp_path, bytes(tampered))
    with pytest.raises(CommandError, match="unknown profile"):
        call_command(
            "pki_issue", "--ca", ISSUING, "--profile", "nope",
            "--csr", str(write(tmp_path / "r.pem", csr_pem())), "--out", str(tmp_path / "o.pem"),
        )  # fmt: skip
    assert (Certificate.objects.count(), AuditEvent.objects.count()) == before


def test_pki_init_unknown_backend_is_a_command_error(pki_software: str) -> None:
    with pytest.raises(CommandError, match="unknown key backend"):
        call_command("pki_init", "--backend", "nope")


def _ocsp_request(cert_der: bytes, issuer_der: bytes) -> bytes:
    req = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(
            x509.load_der_x509_certificate(cert_der),
            x509.load_der_x509_certificate(issuer_der),
            hashes.SHA1(),
        )
        .build()
    )
    return req.public_bytes(serialization.Encoding.DER)


def test_ocsp_get_post_and_malformed(
    pki_software: str, client: Client, tmp_path: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        _issue_cmd(tmp_path, csr_pem())
    row = Certificate.objects.get(profile="cps_auth")
    issuer = CertificateAuthority.objects.get(short_name=ISSUING)
    request = _ocsp_request(bytes(row.der), bytes(issuer.certificate_der))

    posted = client.post("/ocsp", request, content_type="application/ocsp-request")
    assert posted.status_code == 200
    assert posted["Content-Type"] == "application/ocsp-response"
    assert "max-age=" in posted["Cache-Control"]
    answer = ocsp.load_der_ocsp_response(posted.content)
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert answer.serial_number == int(row.serial)

    encoded = base64.b64encode(request).decode()
    fetched = client.get(f"/ocsp/{encoded}")
    assert fetched.status_code == 200
    assert fetched.content == posted.content

    bad = client.post("/ocsp", b"\x30\x00junk", content_type="application/ocsp-request")
    assert bad.status_code == 400
    status = ocsp.load_der_ocsp_response(bad.content).response_status
    assert status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert client.get("/ocsp/%%%notbase64").status_code == 400

    other = _ocsp_request(bytes(issuer.certificate_der), bytes(issuer.certificate_der))
    unknown = client.post("/ocsp", other, content_type="application/ocsp-request")
    status = ocsp.load_der_ocsp_response(unknown.content).response_status
    assert status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_missing_crl_is_404(pki_software: str, client: Client) -> None:
    assert client.get(f"/pki/crl/{ISSUING}.crl").status_code == 404
    assert client.get("/pki/ca/NOPE.cer").status_code == 404
