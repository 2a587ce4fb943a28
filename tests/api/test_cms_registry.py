"""The registry API: holders, import, stock, cards and their transitions, requests."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cms.choices import CardStatus
from cms.models import Card, Holder
from tests.cms.conftest import card_make, cps3, cps4, holder, holder_make  # noqa: F401
from tests.cms.personalization.conftest import card_key_dir, card_keys  # noqa: F401 - shared

pytestmark = pytest.mark.django_db

CLAIRE = {
    "national_id": "810002813839",
    "last_name": "Martin",
    "first_name": "Claire",
    "profession": "10",
    "postal_code": "69003",
}


def test_holder_create_duplicate_and_invalid(api_client_for):
    client = api_client_for("issuance_operator")
    created = client.post("/api/v1/holders/create", CLAIRE, format="json")
    assert created.status_code == 201 and created.json()["departement"] == "69"
    duplicate = client.post(
        "/api/v1/holders/create", {**CLAIRE, "first_name": "Paul"}, format="json"
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["extra"]["holder_id"] == created.json()["id"]
    invalid = client.post(
        "/api/v1/holders/create", {**CLAIRE, "national_id": "812345678901"}, format="json"
    )
    assert invalid.status_code == 400 and "national_id" in invalid.json()["extra"]["fields"]
    assert Holder.objects.count() == 1


def test_holder_search_by_identifier_name_profession_and_departement(api_client_for):
    holder_make("810002813839", last_name="MARTIN", profession="10", departement="75")
    holder_make("0751234567", last_name="MARTINEZ", profession="60", departement="69")
    holder_make("610002813839/1", last_name="DURAND", profession="60", departement="69")
    client = api_client_for("helpdesk_agent")

    def ids(query):
        response = client.get(f"/api/v1/holders?{query}")
        assert response.status_code == 200
        return sorted(h["national_id"] for h in response.json()["results"])

    assert ids("name=artin") == ["0751234567", "810002813839"]
    assert ids("name=ma") == ["0751234567", "810002813839"]
    assert ids("national_id=0751234567") == ["0751234567"]
    assert ids("profession=60&departement=69") == ["0751234567", "610002813839/1"]
    assert client.get("/api/v1/holders?profession=11").status_code == 400


def test_holder_import_upload_returns_the_report(api_client_for):
    content = (
        b"national_id;last_name;first_name;profession\n"
        b"810002813839;Martin;Claire;10\n810002813838;Bad;Row;10\n"
    )
    response = api_client_for("issuance_operator").post(
        "/api/v1/holders/import",
        {"file": SimpleUploadedFile("rpps.csv", content)},
        format="multipart",
    )
    body = response.json()
    assert response.status_code == 200
    assert (body["created"], body["rejected_count"]) == (1, 1)
    assert body["rejected"][0]["line"] == 3


def test_stock_batch_upload_then_counts(api_client_for, cps4, card_keys):  # noqa: F811
    from cards.products import CPS4
    from cms.personalization.keys import card_keys_provision

    card_keys_provision(CPS4)  # the test vendor's transport master, version 1
    client = api_client_for("issuance_operator")
    batch = client.post(
        "/api/v1/stock/batches/register",
        {
            "vendor": "Idemia",
            "reference": "B-7",
            "product_id": cps4.pk,
            "file": SimpleUploadedFile(
                "b.csv", b"chip_serial,desfire_uid,transport_key_version\n0A0B0C0D0E0F1011,,1\n"
            ),
        },
        format="multipart",
    )
    assert batch.status_code == 201, batch.json()
    counts = api_client_for("auditor").get("/api/v1/stock/counts").json()
    assert counts == [
        {
            "pool": "",
            "product": "CPS4 v1",
            "counts": {**dict.fromkeys(CardStatus.values, 0), "IN_STOCK": 1},
        }
    ]


def test_invalid_transition_is_409_with_allowed_transitions(api_client_for, cps4):  # noqa: F811
    card = card_make(cps4, CardStatus.ISSUED)
    response = api_client_for("helpdesk_agent").post(
        f"/api/v1/cards/{card.pk}/transition", {"transition": "suspend"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["extra"]["allowed"] == ["activate", "revoke", "expire"]


def test_card_detail_lists_what_the_caller_may_do(api_client_for, cps4):  # noqa: F811
    card = card_make(cps4, CardStatus.ACTIVE)
    detail = api_client_for("helpdesk_agent").get(f"/api/v1/cards/{card.pk}").json()
    assert detail["allowed_transitions"] == ["suspend", "revoke"]
    assert (
        api_client_for("auditor").get(f"/api/v1/cards/{card.pk}").json()["allowed_transitions"]
        == []
    )


def test_dual_control_over_the_api(api_client_for, cps4):  # noqa: F811
    card = card_make(cps4, CardStatus.SUSPENDED)
    alice, bob = api_client_for("helpdesk_agent"), api_client_for("security_officer")
    asked = alice.post(
        f"/api/v1/cards/{card.pk}/transition", {"transition": "reinstate"}, format="json"
    )
    assert asked.status_code == 202 and not asked.json()["applied"]
    approval_id = asked.json()["pending_approval"]["id"]
    self_approved = alice.post(f"/api/v1/card-approvals/{approval_id}/approve")
    assert self_approved.status_code == 403
    assert set(self_approved.json()) == {"message", "extra"}
    approved = bob.post(f"/api/v1/card-approvals/{approval_id}/approve")
    assert approved.status_code == 200 and approved.json()["card"]["status"] == "ACTIVE"


def test_request_flow_and_self_approval_over_the_api(api_client_for, cps4, holder):  # noqa: F811
    old = card_make(cps4, CardStatus.REVOKED, holder=holder)
    alice, bob = api_client_for("helpdesk_agent"), api_client_for("issuance_operator")
    created = alice.post(
        "/api/v1/requests/create",
        {
            "holder_id": str(holder.pk),
            "kind": "replacement",
            "product_id": cps4.pk,
            "replaces_card_id": str(old.pk),
        },
        format="json",
    )
    assert created.status_code == 201
    request_id = created.json()["id"]
    assert alice.post(f"/api/v1/requests/{request_id}/submit").json()["status"] == "submitted"
    assert alice.post(f"/api/v1/requests/{request_id}/approve").status_code == 403
    approved = bob.post(f"/api/v1/requests/{request_id}/approve", {"note": "ok"}, format="json")
    assert approved.status_code == 200 and approved.json()["approved_by"] == bob.user.username
    card_make(cps4)
    queued = bob.post(f"/api/v1/requests/{request_id}/queue")
    assert queued.status_code == 200 and queued.json()["status"] == "queued"
    listed = bob.get("/api/v1/requests?status=queued&kind=replacement").json()
    assert [r["id"] for r in listed["results"]] == [request_id]


def test_card_search_and_its_query_budget(api_client_for, cps4):  # noqa: F811
    client = api_client_for("auditor")
    for _ in range(3):
        card_make(cps4, CardStatus.ACTIVE)
    client.get("/api/v1/cards")  # warm-up: the token's first use writes once
    with CaptureQueriesContext(connection) as few:
        assert client.get("/api/v1/cards?status=ACTIVE").status_code == 200
    for _ in range(10):
        card_make(cps4, CardStatus.ACTIVE)
    with CaptureQueriesContext(connection) as many:
        response = client.get("/api/v1/cards?status=ACTIVE")
    assert response.json()["count"] == 13
    assert len(many) == len(few)  # no query per card
    card = Card.objects.filter(status="ACTIVE").select_related("holder").first()
    by_number = client.get(f"/api/v1/cards?card_number={card.card_number}").json()
    assert [c["id"] for c in by_number["results"]] == [str(card.pk)]
    by_uid = client.get(f"/api/v1/cards?desfire_uid={card.desfire_uid.lower()}").json()
    assert by_uid["count"] == 1
    by_name = client.get(f"/api/v1/cards?name={card.holder.last_name.lower()}").json()
    assert str(card.pk) in [c["id"] for c in by_name["results"]]


# A field longer than the csv module's limit (128 KiB) made csv.Error escape as a 500.
HUGE_FIELD = "x" * (140 * 1024)


def test_holder_import_with_an_oversized_csv_field_is_400_and_imports_nothing(api_client_for):
    content = (
        "national_id;last_name;first_name;profession\n810002813839;Martin;Claire;10\n"
        f'810002813847;"{HUGE_FIELD}";Jean;10\n'
    ).encode()
    response = api_client_for("issuance_operator").post(
        "/api/v1/holders/import",
        {"file": SimpleUploadedFile("rpps.csv", content)},
        format="multipart",
    )
    assert response.status_code == 400, response.content
    assert response.json()["extra"]["line"] == 3
    assert not Holder.objects.exists()


def test_stock_batch_with_an_oversized_csv_field_is_400_and_registers_nothing(
    api_client_for,
    cps4,  # noqa: F811
):
    content = f'chip_serial,desfire_uid\n0A0B0C0D0E0F1011,\n"{HUGE_FIELD}",\n'.encode()
    response = api_client_for("issuance_operator").post(
        "/api/v1/stock/batches/register",
        {"vendor": "Idemia", "reference": "B-8", "product_id": cps4.pk,
         "file": SimpleUploadedFile("b.csv", content)},
        format="multipart",
    )  # fmt: skip
    assert response.status_code == 400, response.content
    assert not Card.objects.exists()


def test_an_upload_over_the_cap_is_413_and_imports_nothing(api_client_for, settings):
    settings.CMS_UPLOAD_MAX_BYTES = 1024
    content = b"national_id;last_name;first_name;profession\n" + (
        b"810002813839;Martin;Claire;10\n" * 100
    )
    response = api_client_for("issuance_operator").post(
        "/api/v1/holders/import",
        {"file": SimpleUploadedFile("rpps.csv", content)},
        format="multipart",
    )
    assert response.status_code == 413, response.content
    assert "size limit" in response.json()["message"]
    assert not Holder.objects.exists()
