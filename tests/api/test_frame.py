"""The API frame: token login, /me, the error envelope, the audit endpoint and the schema."""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from django.test import override_settings
from openapi_spec_validator import validate
from rest_framework.test import APIClient

from core.actors import Actor
from core.audit import audit_event_create
from core.models import ApiToken, AuditEvent

pytestmark = pytest.mark.django_db


def test_login_returns_a_token_that_is_stored_only_as_a_digest(make_user):
    make_user("auditor", username="alice")
    response = APIClient().post(
        "/api/v1/auth/token",
        {"username": "alice", "password": "correct horse battery staple"},
        format="json",
    )
    assert response.status_code == 201
    token = response.json()["token"]
    stored = ApiToken.objects.get()
    assert token not in (stored.digest, stored.prefix) and token.startswith(stored.prefix)
    assert token not in str(list(AuditEvent.objects.values_list("details", flat=True)))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json() == {"username": "alice", "kind": "user", "full_name": "", "roles": ["auditor"]}


def test_wrong_password_is_a_401_with_the_envelope_and_no_token(make_user):
    make_user("auditor", username="bob")
    response = APIClient().post(
        "/api/v1/auth/token", {"username": "bob", "password": "nope"}, format="json"
    )
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert set(response.json()) == {"message", "extra"}
    assert ApiToken.objects.count() == 0


def test_revoked_and_garbage_tokens_are_refused(api_client_for):
    from core.tokens import api_token_revoke

    client = api_client_for("auditor")
    assert client.get("/api/v1/me").status_code == 200
    api_token_revoke(token_id=ApiToken.objects.get().pk, actor=Actor.system("tests"))
    assert client.get("/api/v1/me").status_code == 401
    garbage = APIClient()
    garbage.credentials(HTTP_AUTHORIZATION="Token a b")
    assert garbage.get("/api/v1/me").status_code == 401


def test_station_accounts_are_reported_as_stations(api_client_for):
    assert api_client_for("station").get("/api/v1/me").json()["kind"] == "station"


@override_settings(DEBUG=True)
def test_unknown_api_route_answers_json_even_in_debug(api_client_for):
    response = api_client_for("auditor").get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["message"].startswith("No API endpoint at /api/v1/no-such-thing")


def test_a_path_with_a_newline_is_a_json_404_too(api_client_for):
    response = api_client_for("auditor").post("/api/v1/helpdesk/cards/%0Ax/new-codes", {})
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def test_unhandled_error_answers_the_envelope_without_details(api_client_for, monkeypatch):
    from api.views import me

    def explode(*args, **kwargs):
        raise KeyError("secret internal detail")

    monkeypatch.setattr(me.MeApi, "get", explode)
    client = api_client_for("auditor")
    client.raise_request_exception = False
    response = client.get("/api/v1/me")
    assert response.status_code == 500
    assert response.json() == {"message": "Internal error; it has been logged.", "extra": {}}


@pytest.mark.parametrize(
    "error_name,status",
    [
        ("BadInput", 400),
        ("Forbidden", 403),
        ("NotFound", 404),
        ("Conflict", 409),
        ("PolicyViolation", 422),
        ("ServiceUnavailable", 503),
    ],
)
def test_application_errors_map_to_their_status(error_name, status, api_client_for, monkeypatch):
    from api.views import me
    from core import errors

    def refuse(*args, **kwargs):
        raise getattr(errors, error_name)("refused because", extra={"rule": "r1"})

    monkeypatch.setattr(me.MeApi, "get", refuse)
    response = api_client_for("auditor").get("/api/v1/me")
    assert response.status_code == status
    assert response.json() == {"message": "refused because", "extra": {"rule": "r1"}}


def test_auditors_list_and_filter_audit_events(api_client_for):
    with transaction.atomic():
        for i in range(3):
            audit_event_create(
                actor=Actor(kind="user", id="9", label="carol"),
                action="card.suspend" if i < 2 else "card.revoke",
                object_type="card",
                object_id=f"c{i}",
                details={"i": i},
            )
    client = api_client_for("auditor")
    page = client.get("/api/v1/audit/events", {"action": "card.suspend"}).json()
    assert [e["object_id"] for e in page["results"]] == ["c1", "c0"]
    assert page["next"] is None
    by_prefix = client.get("/api/v1/audit/events", {"action": "card."}).json()["results"]
    assert [e["action"] for e in by_prefix] == ["card.revoke", "card.suspend", "card.suspend"]
    event = page["results"][0]
    assert event["actor"] == {"kind": "user", "id": "9", "label": "carol"}
    assert len(event["hash"]) == 64
    first = client.get("/api/v1/audit/events", {"actor": "carol", "page_size": 1}).json()
    assert [e["object_id"] for e in first["results"]] == ["c2"]
    second = client.get(first["next"]).json()  # keyset pages follow the cursor
    assert [e["object_id"] for e in second["results"]] == ["c1"]
    bad = client.get("/api/v1/audit/events", {"occurred_after": "not-a-date"})
    assert bad.status_code == 400 and "occurred_after" in bad.json()["extra"]["fields"]


def test_schema_is_valid_openapi_3(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    validate(schema)
    assert "/api/v1/me" in schema["paths"] and "/api/v1/audit/events" in schema["paths"]


def test_docs_page_is_served_without_external_assets(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"cdn." not in response.content


@pytest.mark.parametrize("path", ["/pki/ca/X.cer", "/ocsp", "/api/v1/me"])
def test_http404_and_permission_denied_on_machine_paths_answer_json(path, rf):
    from django.core.exceptions import PermissionDenied
    from django.http import Http404

    from api.middleware import JsonErrorMiddleware

    middleware = JsonErrorMiddleware(lambda request: None)
    not_found = middleware.process_exception(rf.get(path), Http404("no such CA"))
    denied = middleware.process_exception(rf.get(path), PermissionDenied())
    assert (not_found.status_code, denied.status_code) == (404, 403)
    assert set(json.loads(not_found.content)) == {"message", "extra"}
    assert middleware.process_exception(rf.get("/console/"), Http404()) is None


def test_password_guessing_is_throttled_per_account_whatever_the_forwarded_address(make_user):
    from django.core.cache import cache

    cache.clear()
    make_user("auditor", username="target")
    client = APIClient()
    statuses = [
        client.post(
            "/api/v1/auth/token",
            {"username": "target", "password": f"guess{n}"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        ).status_code
        for n in range(12)
    ]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    assert ApiToken.objects.count() == 0
    cache.clear()


def test_schema_generates_without_a_warning(tmp_path):
    """Colliding component names or enums make a wrong schema: drf-spectacular only warns."""
    from django.core.management import call_command

    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )
    text = (tmp_path / "schema.yaml").read_text()
    assert "StationClaimRequest" in text and "StationRunning" in text and "tokenAuth" in text
