"""Relying parties: registration, the read-key export under dual control (wrapped to the relying
party's RSA key, unwrapped here as it would), withdrawal refusing exports."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import cmac, hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import algorithms

from core.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def rp_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def provisioned(card_keys):
    from demo import setup

    return setup.products_and_keys()


def _pem(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_export_under_dual_control_then_withdrawal(provisioned, api_client_for, rp_key):
    first = api_client_for("security_officer")
    second = api_client_for("security_officer")
    created = first.post(
        "/api/v1/relying-parties/create",
        {"name": "Hôpital Nord, accès parkings", "public_key_pem": _pem(rp_key)},
        format="json",
    )
    assert created.status_code == 201, created.json()
    party = created.json()["id"]

    asked = first.post(
        f"/api/v1/relying-parties/{party}/key-export", {"reason": "new readers"}, format="json"
    )
    assert asked.status_code == 202 and asked.json()["status"] == "pending"
    act = asked.json()["id"]
    # the requester cannot approve their own request
    assert (
        first.post(f"/api/v1/dual-control/acts/{act}/approve", {}, format="json").status_code == 403
    )
    approved = second.post(f"/api/v1/dual-control/acts/{act}/approve", {}, format="json")
    assert approved.status_code == 200, approved.json()
    result = approved.json()["result"]
    assert set(result) == {"export_id", "key_label", "check_value"}

    export = first.get(f"/api/v1/relying-parties/{party}/key-exports/{result['export_id']}")
    assert export.status_code == 200
    wrapped = base64.b64decode(export.json()["wrapped"])
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    master = rp_key.decrypt(wrapped, oaep)
    assert len(master) == 16
    mac = cmac.CMAC(algorithms.AES(master))
    mac.update(bytes(16))
    assert (
        mac.finalize()[:3].hex().upper()
        == result["check_value"]
        == export.json()["key_check_value"]
    )
    assert master.hex() not in str(list(AuditEvent.objects.values_list("details", flat=True)))
    assert AuditEvent.objects.filter(action="contactless.read_key_export").count() == 1

    withdrawn = first.post(f"/api/v1/relying-parties/{party}/withdraw", {}, format="json")
    assert withdrawn.status_code == 200 and withdrawn.json()["active"] is False
    again = first.post(
        f"/api/v1/relying-parties/{party}/key-export", {"reason": "x"}, format="json"
    )
    assert again.status_code == 409
    assert (
        first.get(f"/api/v1/relying-parties/{party}/key-exports/{result['export_id']}").status_code
        == 409
    )


def test_export_requested_before_withdrawal_is_refused_at_approval(
    provisioned, api_client_for, rp_key
):
    first = api_client_for("security_officer")
    second = api_client_for("security_officer")
    party = first.post(
        "/api/v1/relying-parties/create",
        {"name": "Cantine", "public_key_pem": _pem(rp_key)},
        format="json",
    ).json()["id"]
    act = first.post(
        f"/api/v1/relying-parties/{party}/key-export", {"reason": "readers"}, format="json"
    ).json()["id"]
    first.post(f"/api/v1/relying-parties/{party}/withdraw", {}, format="json")
    refused = second.post(f"/api/v1/dual-control/acts/{act}/approve", {}, format="json")
    assert refused.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "public_key_pem": "not a key"},
        {"name": "x"},
    ],
)
def test_bad_registration_is_400(db, api_client_for, body):
    response = api_client_for("security_officer").post(
        "/api/v1/relying-parties/create", body, format="json"
    )
    assert response.status_code == 400


def test_only_security_officers_register(db, api_client_for, rp_key):
    response = api_client_for("helpdesk_agent").post(
        "/api/v1/relying-parties/create",
        {"name": "x", "public_key_pem": _pem(rp_key)},
        format="json",
    )
    assert response.status_code == 403
