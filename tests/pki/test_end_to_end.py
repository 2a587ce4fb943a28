"""Issued artefacts checked by the OpenSSL command line and pkilint, on both key backends."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from django.core.management import call_command
from django.test import Client

from core.actors import Actor
from pki import services
from pki.choices import CaKind, CrlKind
from pki.domain.reasons import RevocationReason
from pki.models import Certificate, CertificateAuthority
from tests.pki.helpers import ISSUING, ROOT, holder, openssl, pem, write
from tests.pki.keys_pool import rsa_key

pytestmark = pytest.mark.integration
ACTOR = Actor.system("tests")
LINT_BIN = Path(shutil.which("lint_pkix_cert") or Path(__file__).parents[2] / ".venv/bin/x").parent


@pytest.fixture(params=["software", pytest.param("pkcs11", marks=pytest.mark.softhsm)])
def backend(request: pytest.FixtureRequest) -> str:
    fixture = "pki_software" if request.param == "software" else "pki_hsm"
    return str(request.getfixturevalue(fixture))


def _chain(tmp_path: Path) -> tuple[Path, Path]:
    root = CertificateAuthority.objects.get(short_name=ROOT)
    issuing = CertificateAuthority.objects.get(short_name=ISSUING)
    root_pem = write(tmp_path / "root.pem", pem(root.certificate_der))
    issuing_pem = write(tmp_path / "issuing.pem", pem(issuing.certificate_der))
    write(tmp_path / "chain.pem", root_pem.read_bytes() + issuing_pem.read_bytes())
    return root_pem, issuing_pem


def _issue(profile: str, n: int, *, on_hold: bool = False) -> Certificate:
    return services.certificate_issue(
        authority=ISSUING,
        profile=profile,
        public_key=rsa_key(f"holder{n}").public_key(),
        holder=holder(n),
        on_hold=on_hold,
        actor=ACTOR,
    )


def test_certificates_crls_and_delta_with_openssl(
    backend: str,
    tmp_path: Path,
    client: Client,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    root_pem, issuing_pem = _chain(tmp_path)
    with django_capture_on_commit_callbacks(execute=True):
        auth = _issue("cps_auth", 1)
        sign = _issue("cps_sign", 2)
    for cert in (auth, sign):
        path = write(tmp_path / f"{cert.pk}.pem", pem(cert.der))
        done = openssl("verify", "-CAfile", root_pem, "-untrusted", issuing_pem, path)
        assert done.returncode == 0, done.stderr
        assert f"{path}: OK" in done.stdout

    services.certificate_revoke(
        certificate_id=auth.pk, reason=RevocationReason.KEY_COMPROMISE, actor=ACTOR
    )
    services.certificate_hold(certificate_id=sign.pk, actor=ACTOR)
    call_command("pki_publish", "--no-ocsp", stdout=io.StringIO())

    response = client.get(f"/pki/crl/{ISSUING}.crl")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pkix-crl"
    assert "max-age=" in response["Cache-Control"]
    crl_path = write(tmp_path / "full.crl", response.content)
    done = openssl("crl", "-inform", "DER", "-in", crl_path, "-CAfile", tmp_path / "chain.pem")
    assert done.returncode == 0, done.stderr
    assert "verify OK" in done.stderr + done.stdout
    text = openssl("crl", "-inform", "DER", "-in", crl_path, "-noout", "-text").stdout
    assert f"{int(auth.serial):X}" in text.replace(":", "")
    assert "Key Compromise" in text
    assert "Certificate Hold" in text

    services.certificate_release_hold(certificate_id=sign.pk, actor=ACTOR)
    services.crl_publish(authority=ISSUING, kind=CrlKind.DELTA, actor=ACTOR)
    delta = client.get(f"/pki/crl/{ISSUING}-delta.crl")
    assert delta.status_code == 200
    delta_path = write(tmp_path / "delta.crl", delta.content)
    done = openssl("crl", "-inform", "DER", "-in", delta_path, "-CAfile", tmp_path / "chain.pem")
    assert "verify OK" in done.stderr + done.stdout
    delta_text = openssl("crl", "-inform", "DER", "-in", delta_path, "-noout", "-text").stdout
    assert "Delta CRL Indicator" in delta_text
    assert "Remove From CRL" in delta_text
    assert f"{int(sign.serial):X}" in delta_text.replace(":", "")

    ca = client.get(f"/pki/ca/{ISSUING}.cer")
    assert ca["Content-Type"] == "application/pkix-cert"
    assert (
        x509.load_der_x509_certificate(ca.content)
        .subject.rfc4514_string()
        .startswith("CN=TEST AC IGC-SANTE FORT PERSONNES")
    )


def _lint(tool: str, path: Path, *extra: str) -> list[str]:
    done = subprocess.run(
        [str(LINT_BIN / tool), "lint", *extra, "-s", "ERROR", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return [line for line in done.stdout.splitlines() if line.strip()]


def test_pkilint_reports_no_error(pki_software: str, tmp_path: Path) -> None:
    auth = _issue("cps_auth", 3)
    sign = _issue("cps_sign", 4)
    # CRLs with entries of every kind (assembled from stored entries, ADR 0003)
    services.certificate_revoke(
        certificate_id=_issue("cps_auth", 5).pk, reason=RevocationReason.KEY_COMPROMISE, actor=ACTOR
    )
    services.certificate_revoke(
        certificate_id=_issue("cps_auth", 6).pk, reason=RevocationReason.UNSPECIFIED, actor=ACTOR
    )
    held = _issue("cps_sign", 7, on_hold=True)
    services.certificate_hold(certificate_id=_issue("cps_sign", 8).pk, actor=ACTOR)
    call_command("pki_publish", "--no-ocsp", stdout=io.StringIO())
    services.certificate_release_hold(certificate_id=held.pk, actor=ACTOR)
    delta = services.crl_publish(authority=ISSUING, kind=CrlKind.DELTA, actor=ACTOR)
    assert delta.entry_count == 1
    docs: list[tuple[str, bytes | memoryview]] = [
        ("auth", auth.der),
        ("sign", sign.der),
        *[(ca.short_name, ca.certificate_der) for ca in CertificateAuthority.objects.all()],
        *[(f"ocsp-{c.pk}", c.der) for c in Certificate.objects.filter(profile="ocsp_responder")],
    ]
    for name, der in docs:
        findings = _lint("lint_pkix_cert", write(tmp_path / f"{name}.pem", pem(der)))
        assert findings == [], f"{name}: {findings}"
    for ca in CertificateAuthority.objects.all():
        for crl in ca.crls.all():
            crl_type = "ARL" if ca.kind == CaKind.ROOT else "CRL"
            path = write(tmp_path / f"{ca.short_name}-{crl.number}.crl", bytes(crl.der))
            findings = _lint("lint_crl", path, "-t", crl_type, "-p", "PKIX")
            assert findings == [], f"{ca.short_name} CRL {crl.number}: {findings}"


@pytest.mark.django_db(transaction=True)
def test_openssl_ocsp_client_good_revoked_hold_release(
    pki_software: str, live_server: Any, tmp_path: Path
) -> None:
    _, issuing_pem = _chain(tmp_path)
    auth = _issue("cps_auth", 5)
    held = _issue("cps_auth", 6, on_hold=True)
    paths = {c.pk: write(tmp_path / f"c{c.pk}.pem", pem(c.der)) for c in (auth, held)}

    def ask(cert: Certificate) -> str:
        done = openssl(
            "ocsp", "-issuer", issuing_pem, "-cert", paths[cert.pk],
            "-url", f"{live_server.url}/ocsp", "-CAfile", tmp_path / "chain.pem", "-no_nonce",
        )  # fmt: skip
        assert "Response verify OK" in done.stderr, done.stderr
        return done.stdout

    assert f"{paths[auth.pk]}: good" in ask(auth)
    held_answer = ask(held)
    assert "revoked" in held_answer
    assert "certificateHold" in held_answer
    services.certificate_revoke(
        certificate_id=auth.pk, reason=RevocationReason.KEY_COMPROMISE, actor=ACTOR
    )
    services.certificate_release_hold(certificate_id=held.pk, actor=ACTOR)
    revoked_answer = ask(auth)
    assert f"{paths[auth.pk]}: revoked" in revoked_answer
    assert "keyCompromise" in revoked_answer
    assert f"{paths[held.pk]}: good" in ask(held)
