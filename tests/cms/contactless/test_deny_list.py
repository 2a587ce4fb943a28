"""The signed deny list: versions, full lists and deltas from real lifecycle transitions, signed
by the status signer and checked with the OpenSSL command line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cms.choices import CardStatus
from cms.contactless import selectors
from cms.contactless.services import deny_list_publish
from cms.models import DenyListPublication
from cms.services.cards import card_transition, card_transition_approve
from core.actors import Actor
from core.models import AuditEvent
from pki.domain.profiles import CONTACTLESS_STATUS_SIGNING
from pki.models import CertificateAuthority, StatusSigner
from tests.cms.conftest import card_make

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")


@pytest.fixture
def root_pem(pki_software, tmp_path: Path) -> Path:
    root = CertificateAuthority.objects.get(short_name="ACR-FO-TEST")
    path = tmp_path / "root.pem"
    path.write_bytes(
        x509.load_der_x509_certificate(bytes(root.certificate_der)).public_bytes(
            serialization.Encoding.PEM
        )
    )
    return path


def _openssl_verify(der: bytes, root: Path, tmp_path: Path) -> dict:
    signed = tmp_path / "list.p7m"
    signed.write_bytes(der)
    out = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            str(signed),
            "-CAfile",
            str(root),
            "-purpose",
            "any",
            "-binary",
        ],
        capture_output=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()
    return json.loads(out.stdout)


def test_full_and_delta_follow_suspension_and_reinstatement(
    cps4, pki_software, root_pem, caller_for, tmp_path
):
    card = card_make(cps4, CardStatus.ACTIVE)
    other = card_make(cps4, CardStatus.ACTIVE)
    first = deny_list_publish(actor=ACTOR)
    assert first is not None and (first.version, first.entries) == (1, 0)
    assert deny_list_publish(actor=ACTOR) is None  # nothing pending, not due: the same list

    helpdesk = caller_for("helpdesk_agent")
    card_transition(card_id=card.pk, transition="suspend", caller=helpdesk)
    card_transition(card_id=other.pk, transition="suspend", caller=helpdesk)
    second = deny_list_publish(actor=ACTOR)
    assert second is not None and second.version == 2

    full = _openssl_verify(bytes(selectors.deny_list_full_latest().der), root_pem, tmp_path)
    assert full["kind"] == "full" and full["version"] == 2
    assert {(e["uid"], e["card"], e["reason"]) for e in full["entries"]} == {
        (card.desfire_uid, card.card_number, "suspended"),
        (other.desfire_uid, other.card_number, "suspended"),
    }
    delta = _openssl_verify(bytes(selectors.deny_list_delta_since(1).der), root_pem, tmp_path)
    assert (delta["kind"], delta["base_version"], delta["version"]) == ("delta", 1, 2)
    assert len(delta["added"]) == 2 and delta["removed"] == []

    pending = card_transition(card_id=card.pk, transition="reinstate", caller=helpdesk).approval
    card_transition_approve(approval_id=pending.pk, caller=caller_for("security_officer"))
    third = deny_list_publish(actor=ACTOR)
    assert third is not None and third.version == 3
    delta = _openssl_verify(bytes(selectors.deny_list_delta_since(2).der), root_pem, tmp_path)
    assert delta["added"] == []
    assert delta["removed"] == [{"uid": card.desfire_uid, "card": card.card_number}]
    full = _openssl_verify(bytes(selectors.deny_list_full_latest().der), root_pem, tmp_path)
    assert [e["uid"] for e in full["entries"]] == [other.desfire_uid]
    assert AuditEvent.objects.filter(action="contactless.deny_list_publish").count() == 3


def test_signer_has_its_own_profile_under_the_technical_ca(pki_software):
    deny_list_publish(actor=ACTOR)
    signer = StatusSigner.objects.get()
    assert signer.certificate.profile == "contactless_status"
    assert signer.certificate.issuer.short_name == "ACI-FO-TECH-TEST"
    cert = x509.load_der_x509_certificate(bytes(signer.certificate.der))
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [CONTACTLESS_STATUS_SIGNING]
    assert AuditEvent.objects.filter(action="pki.status_signer_create").count() == 1
    deny_list_publish(actor=ACTOR, force=True)
    assert StatusSigner.objects.count() == 1  # reused while valid


def test_a_changed_byte_fails_openssl(pki_software, root_pem, tmp_path):
    deny_list_publish(actor=ACTOR)
    der = bytearray(DenyListPublication.objects.get(version=1, kind="full").der)
    at = der.index(b'"version":1')
    der[at + 10] = ord("7")
    signed = tmp_path / "tampered.p7m"
    signed.write_bytes(bytes(der))
    out = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            str(signed),
            "-CAfile",
            str(root_pem),
            "-purpose",
            "any",
            "-binary",
        ],
        capture_output=True,
        check=False,
    )
    assert out.returncode != 0
