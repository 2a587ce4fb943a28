"""Console pages × roles, with session authentication."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.urls import URLPattern, get_resolver

from core.actors import Actor
from core.audit import audit_event_create
from core.roles import Role
from tests.api.endpoints import _concrete

pytestmark = pytest.mark.django_db


def console_pages():
    resolver = get_resolver()
    console = next(p for p in resolver.url_patterns if str(p.pattern) == "console/")
    for pattern in console.url_patterns:
        assert isinstance(pattern, URLPattern)
        roles = getattr(pattern.callback.view_class, "roles", None)
        if roles is not None:
            # Pages about one object get a sample id (no such object: 404 once past the roles).
            yield _concrete(f"console/{pattern.pattern}"), roles


PAGES = list(console_pages())


def test_every_role_aware_page_is_found():
    assert {"/console/", "/console/audit/"} <= {url for url, _ in PAGES}


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("url,roles", PAGES, ids=[url for url, _ in PAGES])
def test_console_role_matrix(url, roles, role, client, make_user):
    client.force_login(make_user(role.value))
    response = client.get(url)
    if role in roles:
        assert response.status_code == (404 if "00000000-" in url else 200)
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("url,roles", PAGES, ids=[url for url, _ in PAGES])
def test_anonymous_visitors_are_sent_to_the_login_page(url, roles, client):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/console/login/")


def test_audit_filter_returns_only_the_table_to_htmx(client, make_user):
    with transaction.atomic():
        audit_event_create(
            actor=Actor.system("t"), action="card.revoke", object_type="card", object_id="42"
        )
        audit_event_create(
            actor=Actor.system("t"), action="pki.crl_publish", object_type="ca", object_id="7"
        )
    client.force_login(make_user("auditor"))
    response = client.get("/console/audit/", {"action": "card."}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html
    assert "card.revoke" in html and "pki.crl_publish" not in html


def test_french_is_served_to_french_browsers(client, make_user):
    client.force_login(make_user("auditor"))
    html = client.get("/console/audit/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Journal d&#x27;audit" in html or "Journal d'audit" in html


def test_audit_pages_go_back_by_sequence_number_with_the_filters_kept(client, make_user):
    with transaction.atomic():
        for n in range(55):
            audit_event_create(
                actor=Actor.system("t"), action="card.suspend", object_type="card", object_id=str(n)
            )
        audit_event_create(
            actor=Actor.system("t"), action="pki.crl_publish", object_type="ca", object_id="x"
        )
    client.force_login(make_user("auditor"))
    first = client.get("/console/audit/", {"action": "card."}, HTTP_HX_REQUEST="true")
    assert first.context["total"] == 56
    assert [e.object_id for e in first.context["events"]][:2] == ["54", "53"]
    assert len(first.context["events"]) == 50 and first.context["older"] is not None
    older = client.get(
        "/console/audit/",
        {"action": "card.", "before": first.context["older"]},
        HTTP_HX_REQUEST="true",
    )
    assert [e.object_id for e in older.context["events"]] == ["4", "3", "2", "1", "0"]
    assert older.context["older"] is None
    assert "action=card." in older.content.decode()  # the "newest" link keeps the filter


def test_a_bad_filter_shows_its_error_and_no_rows(client, make_user):
    client.force_login(make_user("auditor"))
    response = client.get(
        "/console/audit/", {"occurred_after": "yesterday"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert response.context["events"] == [] and "occurred_after" in response.context["errors"]
