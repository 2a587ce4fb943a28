"""Console pages × roles, with session authentication."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import transaction
from django.urls import URLPattern, get_resolver, reverse

from console.sections import SECTIONS
from core.actors import Actor
from core.audit import audit_event_create
from core.roles import Role

pytestmark = pytest.mark.django_db


def console_pages():
    """Every console URL whose view declares its roles: (name, roles, its URL parameters, whether
    it answers GET)."""
    resolver = get_resolver()
    console = next(p for p in resolver.url_patterns if str(p.pattern) == "console/")
    for pattern in console.url_patterns:
        assert isinstance(pattern, URLPattern)
        view = pattern.callback.view_class
        roles = getattr(view, "roles", None)
        if roles is not None:
            params = tuple(sorted(pattern.pattern.converters))
            yield pattern.name, roles, params, "get" in view.http_method_names


PAGES = list(console_pages())
IDS = [name for name, *_ in PAGES]


@pytest.fixture
def url_of(cps4, make_user):
    """A URL of each console page, its parameters naming real objects."""
    from cms.choices import ApprovalStatus, CardStatus
    from cms.models import CardRequest, CardTransitionApproval, SitePool, Station
    from cps3.models import Wave
    from tests.cms.conftest import card_make, holder_make

    holder = holder_make()
    card = card_make(cps4, CardStatus.ACTIVE, holder=holder)
    request = CardRequest.objects.create(
        kind="new", holder=holder, product=cps4, requested_by_label="someone"
    )
    approval = CardTransitionApproval.objects.create(
        card=card,
        transition="reinstate",
        status=ApprovalStatus.PENDING,
        requested_by=make_user("helpdesk_agent"),
    )
    values: dict[str, object] = {
        "holder_id": holder.pk,
        "card_id": card.pk,
        "request_id": request.pk,
        "transition": "suspend",
        "approval_id": approval.pk,
        "mailer_id": uuid.uuid4(),
        "user_id": make_user("auditor").pk,
        "pool_id": SitePool.objects.create(code="nantes", name="Nantes").pk,
        "station_id": Station.objects.create(
            site=SitePool.objects.create(code="lyon", name="Lyon"), name="st-1"
        ).pk,  # none: the role gate answers before the service's 404
        "renewal_id": uuid.uuid4(),  # none: the role gate answers before the service's 404
        "wave_id": Wave.objects.create(
            name="w",
            pool=SitePool.objects.create(code="brest", name="Brest"),
            product=cps4,
            daily_capacity=1,
            start_on=dt.date(2030, 1, 1),
        ).pk,
    }

    def _url(name, params, user=None):
        if "import_id" in params:  # an import of this user's, finished
            from django.core.cache import cache

            values["import_id"] = "0" * 32
            state = {"state": "done", "rows": 0, "estimate": 0, "report": {"rejected": []}}
            cache.set(f"cms:holder-import:{'0' * 32}:state", {**state, "user_id": user and user.pk})
        return reverse(f"console:{name}", kwargs={p: values[p] for p in params})

    return _url


def test_every_role_aware_page_is_found():
    assert {"home", "audit", "holders", "holder", "card", "requests", "request"} <= set(IDS)


def test_every_section_of_the_navigation_opens_for_the_roles_it_is_shown_to():
    views = {name: set(roles) for name, roles, *_ in PAGES}
    for section in SECTIONS:
        assert set(section.roles) == views[section.url_name.removeprefix("console:")]


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("name,roles,params,get", PAGES, ids=IDS)
def test_console_role_matrix(name, roles, params, get, role, client, make_user, url_of):
    user = make_user(role.value)
    client.force_login(user)
    url = url_of(name, params, user)
    if get:
        assert client.get(url).status_code == (200 if role in roles else 403)
    else:  # an action: refused before anything happens, or answered (a redirect, a fragment)
        status = client.post(url, {}).status_code
        assert status == 403 if role not in roles else status in (200, 302)


@pytest.mark.parametrize("name,roles,params,get", PAGES, ids=IDS)
def test_anonymous_visitors_are_sent_to_the_login_page(name, roles, params, get, client, url_of):
    url = url_of(name, params)
    response = client.get(url) if get else client.post(url, {})
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


@pytest.mark.parametrize(
    ("url", "role", "heading"),
    [
        ("/console/helpdesk/", "helpdesk_agent", "<h1>Assistance</h1>"),
        ("/console/cards/report-loss/", "helpdesk_agent", "Déclarer une carte perdue"),
        ("/console/renewals/", "auditor", "<h1>Campagne de renouvellement</h1>"),
        ("/console/bulk-revocations/", "auditor", "<h1>Révocations en masse</h1>"),
        ("/console/contactless/", "auditor", "<h1>Liste de refus signée</h1>"),
        ("/console/migration/", "auditor", "<h1>Migration CPS3 → CPS4</h1>"),
    ],
)
def test_pages_added_later_are_french_too(client, make_user, url, role, heading):
    client.force_login(make_user(role))
    html = client.get(url, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert heading in html


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
    assert first.context["total"] == 57  # 56 events and the auditor's own sign-in (auth.sign_in)
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
