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
from tests.pki.helpers import ISSUING, TECH, csr_pem, holder, write

PASSWORD = "correct horse battery staple"  # tests.conftest.make_user


@pytest.fixture
def officer(make_user: Callable[..., Any]) -> Any:
    return make_user("security_officer", username="officer-issue")


def _issue_cmd(
    tmp_path: Path,
    csr: bytes,
    *extra: str,
    profile: str = "station_client",
    ca: str = TECH,
    officer: str = "officer-issue",
    password: str = PASSWORD,
) -> str:
    out = io.StringIO()
    call_command(
        "pki_issue", "--ca", ca, "--profile", profile, "--officer", officer,
        "--csr", str(write(tmp_path / "req.pem", csr)), "--out", str(tmp_path / "out.pem"),
        *extra,
        stdout=out, stdin=io.StringIO(password + "\n"),
    )  # fmt: skip
    return out.getvalue()


def test_pki_issue_and_revoke_commands(
    pki_software: str,
    officer: Any,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _issue_cmd(tmp_path, csr_pem(common_name="station-01"), "--on-hold")
    cert = x509.load_pem_x509_certificate((tmp_path / "out.pem").read_bytes())
    row = Certificate.objects.get(serial=cert.serial_number)
    assert (row.status, row.profile, row.issuer.short_name) == ("on_hold", "station_client", TECH)
    event = AuditEvent.objects.get(action="pki.certificate_issue", object_id=str(row.pk))
    # the person who issued it, not "the system"
    assert (event.actor_kind, event.actor_label) == ("user", "officer-issue")
    serial_hex = f"0x{cert.serial_number:x}"
    call_command(
        "pki_revoke", "--ca", TECH, "--serial", serial_hex, "--release", stdout=io.StringIO()
    )
    call_command(
        "pki_revoke", "--ca", TECH, "--serial", str(cert.serial_number),
        "--reason", "superseded", stdout=io.StringIO(),
    )  # fmt: skip
    row.refresh_from_db()
    assert row.status == "revoked"
    with pytest.raises(CommandError, match="already revoked"):
        call_command(
            "pki_revoke", "--ca", TECH, "--serial", serial_hex, "--reason", "superseded",
        )  # fmt: skip
    with pytest.raises(CommandError, match="no certificate with serial"):
        call_command("pki_revoke", "--ca", TECH, "--serial", "0x1234", "--reason", "superseded")


def test_pki_issue_refuses_bad_csrs_without_rows(
    pki_software: str, officer: Any, tmp_path: Path
) -> None:
    before = (Certificate.objects.count(), AuditEvent.objects.count())
    with pytest.raises(CommandError, match="PKCS#10"):
        _issue_cmd(tmp_path, b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n")
    tampered = bytearray(x509.load_pem_x509_csr(csr_pem()).public_bytes(serialization.Encoding.DER))
    tampered[-3] ^= 0x01
    with pytest.raises(CommandError, match="signature"):
        _issue_cmd(tmp_path, bytes(tampered))
    with pytest.raises(CommandError, match="unknown profile"):
        _issue_cmd(tmp_path, csr_pem(), profile="nope")
    assert (Certificate.objects.count(), AuditEvent.objects.count()) == before


# Issue 11 §3: the attacks that pki_issue allowed.


def test_pki_issue_makes_no_responder_certificate_from_a_csr(
    pki_software: str, officer: Any, tmp_path: Path
) -> None:
    """A self-made key certified as the personal CA's OCSP responder could answer "good" for
    revoked certificates."""
    before = (Certificate.objects.count(), AuditEvent.objects.count())
    for ca in (ISSUING, TECH):
        with pytest.raises(CommandError, match="responder installer"):
            _issue_cmd(tmp_path, csr_pem(common_name="rogue responder"), ca=ca,
                       profile="ocsp_responder")  # fmt: skip
    assert (Certificate.objects.count(), AuditEvent.objects.count()) == before


def test_a_ca_issues_only_the_profiles_it_lists(pki_software: str) -> None:
    from core.actors import Actor
    from core.errors import ApplicationError
    from pki.services import certificate_issue

    for ca, profile in ((ISSUING, "ocsp_responder"), (ISSUING, "station_client"),
                        (TECH, "cps_auth"), (ISSUING, "ca_issuing")):  # fmt: skip
        with pytest.raises(ApplicationError):
            certificate_issue(
                authority=ca, profile=profile, csr=csr_pem(), holder=holder(),
                actor=Actor.system("test"),
            )  # fmt: skip
    # the only responder and CA certificates are those of the installer and pki_init
    installed = {
        pk
        for pair in CertificateAuthority.objects.values_list("ocsp_responder_id", "certificate_id")
        for pk in pair
        if pk is not None
    }
    made = set(
        Certificate.objects.filter(profile__in=["ocsp_responder", "ca_issuing"]).values_list(
            "pk", flat=True
        )
    )
    assert made == installed and len(made) == 4


@pytest.mark.parametrize("profile", ["cps_auth", "cps_sign"])
def test_pki_issue_refuses_personal_profiles(
    pki_software: str, officer: Any, tmp_path: Path, profile: str
) -> None:
    """A holder's identity typed on a command line is tied to no card and approved by nobody."""
    before = (Certificate.objects.count(), AuditEvent.objects.count())
    with pytest.raises(CommandError, match="personal"):
        _issue_cmd(tmp_path, csr_pem(), ca=ISSUING, profile=profile)
    with pytest.raises(CommandError):  # the holder options are gone with it
        _issue_cmd(tmp_path, csr_pem(), "--national-id", "810002813839", ca=ISSUING,
                   profile=profile)  # fmt: skip
    assert (Certificate.objects.count(), AuditEvent.objects.count()) == before


def test_pki_issue_needs_an_authenticated_security_officer(
    pki_software: str, officer: Any, make_user: Callable[..., Any], tmp_path: Path
) -> None:
    make_user("issuance_operator", username="operator-issue")
    before = (Certificate.objects.count(), AuditEvent.objects.count())
    with pytest.raises(CommandError, match="Authentication failed"):
        _issue_cmd(tmp_path, csr_pem(), password="not the password")
    with pytest.raises(CommandError, match="Authentication failed"):
        _issue_cmd(tmp_path, csr_pem(), officer="nobody")
    with pytest.raises(CommandError, match="not a security officer"):
        _issue_cmd(tmp_path, csr_pem(), officer="operator-issue")
    with pytest.raises(CommandError, match="No password"):
        call_command(
            "pki_issue", "--ca", TECH, "--profile", "station_client", "--officer", "officer-issue",
            "--csr", str(write(tmp_path / "r.pem", csr_pem())), "--out", str(tmp_path / "o.pem"),
            stdin=io.StringIO(""),
        )  # fmt: skip
    with pytest.raises(CommandError):
        call_command(
            "pki_issue",
            "--ca",
            TECH,
            "--profile",
            "station_client",
            "--csr",
            str(write(tmp_path / "r.pem", csr_pem())),
            "--out",
            str(tmp_path / "o.pem"),
        )  # fmt: skip  (no --officer at all)
    assert Certificate.objects.count() == before[0]
    # Nothing issued; the two failed authentications are audited as failed sign-ins (§5).
    new = AuditEvent.objects.order_by("seq")[before[1] :]
    assert [e.action for e in new] == ["auth.sign_in_failed", "auth.sign_in_failed"]


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
    pki_software: str, officer: Any, client: Client, tmp_path: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        _issue_cmd(tmp_path, csr_pem())
    row = Certificate.objects.get(profile="station_client")
    issuer = CertificateAuthority.objects.get(short_name=TECH)
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
