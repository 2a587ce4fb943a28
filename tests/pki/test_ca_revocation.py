"""Issue 11 §6: a compromised issuing CA can be revoked. Its certificate is a row under its
parent; revoking it is dual control (two security officers, through the act or the command); the
parent's CRL then lists it and `openssl verify -crl_check_all` fails for its leaves."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.x509 import ocsp
from django.core.management import CommandError, call_command
from django.test import Client

from core.actors import Actor
from core.dual_control import act_approve, act_request
from core.errors import ApplicationError, BadInput, Forbidden
from core.models import AuditEvent
from pki import services
from pki.choices import CrlKind
from pki.models import Certificate, CertificateAuthority, CrlPublication
from tests.pki.conftest import TEST_HIERARCHY
from tests.pki.helpers import ISSUING, ROOT, TECH, holder, openssl, pem, write
from tests.pki.keys_pool import rsa_key

PASSWORD = "correct horse battery staple"  # tests.conftest.make_user
ACTOR = Actor.system("tests")


@pytest.fixture
def officers(make_user: Callable[..., Any]) -> tuple[Any, Any]:
    return (
        make_user("security_officer", username="alice"),
        make_user("security_officer", username="bob"),
    )


def _verify(tmp_path: Path, leaf: Certificate) -> str:
    """`openssl verify -crl_check_all` of a leaf of ISSUING with the newest CRLs of both CAs."""
    root = CertificateAuthority.objects.get(short_name=ROOT)
    issuing = CertificateAuthority.objects.get(short_name=ISSUING)
    crls = []
    for ca in (root, issuing):
        latest = CrlPublication.objects.filter(authority=ca, kind=CrlKind.FULL).latest("number")
        crls += ["-CRLfile", write(tmp_path / f"{ca.short_name}.crl", pem(latest.der, "CRL"))]
    done = openssl(
        "verify", "-crl_check_all",
        "-CAfile", write(tmp_path / "root.pem", pem(root.certificate_der)),
        "-untrusted", write(tmp_path / "issuing.pem", pem(issuing.certificate_der)),
        *crls, write(tmp_path / "leaf.pem", pem(leaf.der)),
    )  # fmt: skip
    return f"rc={done.returncode}\n{done.stdout}{done.stderr}"


def _leaf_and_crls() -> Certificate:
    leaf = services.certificate_issue(
        authority=ISSUING,
        profile="cps_auth",
        public_key=rsa_key("holder31").public_key(),
        holder=holder(31),
        actor=ACTOR,
    )
    for name in (ROOT, ISSUING):
        services.crl_publish(authority=name, kind=CrlKind.FULL, actor=ACTOR)
    return leaf


def test_issuing_ca_certificates_are_rows_under_their_parent(pki_software: str) -> None:
    root = CertificateAuthority.objects.get(short_name=ROOT)
    assert root.certificate_id is None
    for name in (ISSUING, TECH):
        ca = CertificateAuthority.objects.get(short_name=name)
        assert ca.certificate is not None
        assert ca.certificate.issuer_id == root.pk
        assert ca.certificate.profile == "ca_issuing"
        assert bytes(ca.certificate.der) == bytes(ca.certificate_der)
        parsed = x509.load_der_x509_certificate(bytes(ca.certificate_der))
        assert int(ca.certificate.serial) == parsed.serial_number
        # and its responder certificate is a row under it
        assert ca.ocsp_responder is not None and ca.ocsp_responder.issuer_id == ca.pk


def test_two_officers_revoke_a_ca_and_its_leaves_fail_verification(
    pki_software: str,
    officers: tuple[Any, Any],
    tmp_path: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    alice, bob = officers
    leaf = _leaf_and_crls()
    before = _verify(tmp_path, leaf)
    assert before.startswith("rc=0") and "OK" in before, before

    act = act_request(
        kind="pki.authority_revoke",
        params={"authority": ISSUING, "reason": "ca_compromise"},
        user=alice,
        reason="the CA key was copied off the HSM",
    )
    with pytest.raises(Forbidden):  # one person cannot do it alone
        act_approve(act_id=act.pk, user=alice)
    assert CertificateAuthority.objects.get(short_name=ISSUING).certificate.status == "valid"

    with django_capture_on_commit_callbacks(execute=True):  # the signing task (eager here)
        act_approve(act_id=act.pk, user=bob)
    row = CertificateAuthority.objects.get(short_name=ISSUING).certificate
    assert (row.status, row.revocation_reason) == ("revoked", "ca_compromise")
    event = AuditEvent.objects.get(action="pki.authority_revoke")
    assert event.actor_label == "bob" and event.details["officers"] == ["alice", "bob"]

    # the root's new CRL lists the CA; its leaves no longer verify
    listed = x509.load_der_x509_crl(
        bytes(
            CrlPublication.objects.filter(authority__short_name=ROOT, kind=CrlKind.FULL)
            .latest("number")
            .der
        )
    )
    entry = listed.get_revoked_certificate_by_serial_number(int(row.serial))
    assert entry is not None
    after = _verify(tmp_path, leaf)
    assert not after.startswith("rc=0"), after
    assert "certificate revoked" in after, after
    _revoked_ca_consequences(tmp_path, leaf)


def _ocsp(body: bytes) -> ocsp.OCSPResponse:
    reply = Client().post("/ocsp", body, content_type="application/ocsp-request")
    return ocsp.load_der_ocsp_response(reply.content)


def _revoked_ca_consequences(tmp_path: Path, leaf: Certificate) -> None:
    """The revoked CA issues nothing more, its responder no longer says "good" for its leaves,
    and the root's own OCSP answer says the CA is revoked (verified by openssl)."""
    root = CertificateAuthority.objects.get(short_name=ROOT)
    issuing = CertificateAuthority.objects.get(short_name=ISSUING)
    with pytest.raises(ApplicationError):
        services.certificate_issue(
            authority=ISSUING,
            profile="cps_auth",
            public_key=rsa_key("holder32").public_key(),
            holder=holder(32),
            actor=ACTOR,
        )
    root_x509 = x509.load_der_x509_certificate(bytes(root.certificate_der))
    issuing_x509 = x509.load_der_x509_certificate(bytes(issuing.certificate_der))
    leaf_x509 = x509.load_der_x509_certificate(bytes(leaf.der))
    leaf_request = ocsp.OCSPRequestBuilder().add_certificate(leaf_x509, issuing_x509, SHA1())
    answer = _ocsp(leaf_request.build().public_bytes(serialization.Encoding.DER))
    assert answer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED

    ca_request = ocsp.OCSPRequestBuilder().add_certificate(issuing_x509, root_x509, SHA1())
    request_der = ca_request.build().public_bytes(serialization.Encoding.DER)
    answer = _ocsp(request_der)
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason is x509.ReasonFlags.ca_compromise
    done = openssl(
        "ocsp", "-reqin", write(tmp_path / "ca.req", request_der),
        "-respin", write(tmp_path / "ca.resp", answer.public_bytes(serialization.Encoding.DER)),
        "-CAfile", write(tmp_path / "root-only.pem", pem(root.certificate_der)), "-resp_text",
    )  # fmt: skip
    assert "Response verify OK" in done.stdout + done.stderr, done.stdout + done.stderr
    assert "Cert Status: revoked" in done.stdout, done.stdout


def test_ca_revocation_by_command_needs_two_authenticated_officers(
    pki_software: str, officers: tuple[Any, Any], tmp_path: Path
) -> None:
    leaf = _leaf_and_crls()

    def revoke(*names: str, passwords: str) -> str:
        out = io.StringIO()
        args = [a for n in names for a in ("--officer", n)]
        call_command(
            "pki_revoke_ca", "--ca", ISSUING, "--reason", "ca_compromise", *args,
            stdout=out, stdin=io.StringIO(passwords),
        )  # fmt: skip
        return out.getvalue()

    for names, passwords in (
        (("alice",), f"{PASSWORD}\n"),
        (("alice", "alice"), f"{PASSWORD}\n{PASSWORD}\n"),
        (("alice", "bob"), f"{PASSWORD}\nwrong\n"),
    ):
        with pytest.raises(CommandError):
            revoke(*names, passwords=passwords)
    assert CertificateAuthority.objects.get(short_name=ISSUING).certificate.status == "valid"

    assert "CRLs published" in revoke("alice", "bob", passwords=f"{PASSWORD}\n{PASSWORD}\n")
    after = _verify(tmp_path, leaf)
    assert "certificate revoked" in after, after
    # the regular publication keeps the root's answer about the CA fresh, and nothing else
    # brings the CA back (no new responder, no profile)
    done = services.pki_publish_all(actor=ACTOR)
    assert f"{ISSUING}: status answer signed by its parent" in done
    call_command("pki_init", config=str(TEST_HIERARCHY), backend="software", stdout=io.StringIO())
    ca = CertificateAuthority.objects.get(short_name=ISSUING)
    assert (ca.ocsp_responder_id, ca.profiles) == (None, [])
    _revoked_ca_consequences(tmp_path, leaf)
    with pytest.raises(CommandError, match="already revoked"):
        revoke("alice", "bob", passwords=f"{PASSWORD}\n{PASSWORD}\n")


def test_a_root_cannot_be_asked_for(pki_software: str, officers: tuple[Any, Any]) -> None:
    alice, _ = officers
    for params in (
        {"authority": ROOT, "reason": "ca_compromise"},
        {"authority": ISSUING, "reason": "certificate_hold"},
        {"authority": "nope", "reason": "ca_compromise"},
    ):
        with pytest.raises(BadInput):
            act_request(kind="pki.authority_revoke", params=params, user=alice, reason="x")


def test_the_migration_backfills_issuing_cas_created_before_it(pki_software: str) -> None:
    import importlib

    from django.apps import apps

    backfill = importlib.import_module("pki.migrations.0006_authority_certificate_row")._backfill
    ca = CertificateAuthority.objects.get(short_name=TECH)
    old = ca.certificate
    assert old is not None
    CertificateAuthority.objects.filter(pk=ca.pk).update(certificate=None)
    Certificate.objects.filter(pk=old.pk).delete()  # as before the migration

    backfill(apps, None)
    ca.refresh_from_db()
    assert ca.certificate is not None
    assert ca.certificate.issuer.short_name == ROOT
    assert bytes(ca.certificate.der) == bytes(ca.certificate_der)
    assert ca.certificate.fingerprint_sha256 == old.fingerprint_sha256
    backfill(apps, None)  # a second run adds nothing
    assert Certificate.objects.filter(profile="ca_issuing").count() == 2
