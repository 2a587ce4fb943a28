"""Holders, cards, requests and the audit chain check through the console (session auth, real
PostgreSQL, the registry services underneath)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.urls import reverse

from cms import lifecycle
from cms.choices import CardStatus, RequestStatus
from cms.models import Card, CardRequest, Holder
from console.lifecycle_svg import lifecycle_svg
from core.models import AuditEvent
from tests.cms.conftest import card_make, holder_make

pytestmark = pytest.mark.django_db

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def operator(client, make_user):
    user = make_user("issuance_operator", username="olivia")
    client.force_login(user)
    return user


def test_holder_search_by_name_national_id_card_number_and_desfire_uid(client, operator, cps4):
    martin = holder_make(last_name="MARTINEZ")
    other = holder_make(national_id="0751234567", last_name="DURAND")
    card = card_make(cps4, CardStatus.ACTIVE, holder=martin)

    def found(q):
        response = client.get(reverse("console:holders"), {"q": q}, HTTP_HX_REQUEST="true")
        assert "<html" not in response.content.decode()  # htmx gets the table only
        return {h.pk for h in response.context["page_obj"]}

    assert found("tinez") == {martin.pk}
    assert found("DU") == {other.pk}
    assert found(martin.national_id) == {martin.pk}
    assert found(card.card_number) == {martin.pk}
    assert found(card.desfire_uid.lower()) == {martin.pk}


def test_a_holder_with_a_wrong_national_id_is_refused_with_its_field_error(client, operator):
    form = {
        "national_id": "810002813838",  # wrong Luhn digit
        "last_name": "Martin",
        "first_name": "Claire",
        "profession": "10",
        "card_type": "CPS",
        "status": "active",
        "postal_code": "75011",
        "country": "FR",
    }
    response = client.post(reverse("console:holder_create"), form)
    assert response.status_code == 400
    assert "national_id" in response.context["form"].errors
    assert response.context["form"]["last_name"].value() == "Martin"  # nothing typed is lost
    assert not Holder.objects.exists()

    form["national_id"] = "810002813839"
    response = client.post(reverse("console:holder_create"), form)
    holder = Holder.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "console:holder", args=[holder.pk]
    )
    assert holder.last_name == "MARTIN" and holder.departement == "75"
    event = AuditEvent.objects.get(action="holder.create")
    assert event.actor_label == "olivia" and event.object_id == str(holder.pk)

    page = client.get(response["Location"]).content.decode()
    assert "holder.create" in page  # the holder's history
    assert f"object_id={holder.pk}" in page  # and the link to all its events


def test_editing_a_holder_changes_the_fields_but_not_the_national_id(client, operator):
    holder = holder_make()
    url = reverse("console:holder_edit", args=[holder.pk])
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {
            "national_id": "0751234567",
            "last_name": "Martin",
            "first_name": "Claire",
            "profession": "60",
            "card_type": "CPS",
            "status": "active",
            "postal_code": "69001",
            "country": "FR",
        },
    )
    assert response.status_code == 302
    holder.refresh_from_db()
    assert (holder.national_id, holder.profession, holder.departement) == (
        "810002813839",
        "60",
        "69",
    )
    assert AuditEvent.objects.filter(action="holder.update", object_id=str(holder.pk)).exists()


def test_dual_control_a_requester_cannot_approve_a_second_person_can(client, make_user, cps4):
    cps4.requires_second_approval = True
    cps4.save()
    holder = holder_make()
    first = make_user("issuance_operator", username="first")
    client.force_login(first)
    response = client.post(
        reverse("console:request_file", args=[holder.pk]), {"product": cps4.pk, "kind": "new"}
    )
    request = CardRequest.objects.get()
    assert response["Location"] == reverse("console:request", args=[request.pk])
    assert request.status == RequestStatus.SUBMITTED

    page = client.get(response["Location"])
    assert page.context["own"] and not page.context["may_approve"]
    assert "another person must approve it" in page.content.decode()
    decide = reverse("console:request_decision", args=[request.pk])
    refused = client.post(decide, {"decision": "approve"}, follow=True)
    assert "approved by someone other than its requester" in refused.content.decode()
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED

    second = make_user("issuance_operator", username="second")
    client.force_login(second)
    queue = client.get(reverse("console:requests"), {"status": "submitted"})
    assert [r.pk for r in queue.context["page_obj"]] == [request.pk]
    assert "first" in queue.content.decode()  # who filed it
    home = client.get(reverse("console:home"))
    waiting = next(t for t in home.context["tiles"] if t.url.endswith("status=submitted"))
    assert waiting.count == 1
    assert client.get(reverse("console:request", args=[request.pk])).context["may_approve"]
    client.post(decide, {"decision": "approve", "note": "checked"})
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED and request.approved_by_id == second.pk


def test_card_page_offers_the_roles_transitions_and_a_revocation_needs_a_reason(
    client, make_user, cps4
):
    card = card_make(cps4, CardStatus.ACTIVE)
    client.force_login(make_user("auditor"))
    assert client.get(reverse("console:card", args=[card.pk])).context["actions"] == []

    client.force_login(make_user("issuance_operator"))
    page = client.get(reverse("console:card", args=[card.pk]))
    assert {a["action_id"] for a in page.context["actions"]} == {"suspend", "revoke"}
    revoke = next(a for a in page.context["actions"] if a["action_id"] == "revoke")
    assert revoke["reasons"]  # the dialog asks for a reason
    html = page.content.decode()
    assert 'aria-current="true"' in html and "current state" in html

    url = reverse("console:card_transition", args=[card.pk, "revoke"])
    refused = client.post(url, {}, follow=True)
    assert refused.status_code == 200 and "reason" in refused.content.decode().lower()
    card.refresh_from_db()
    assert card.status == CardStatus.ACTIVE

    client.post(url, {"reason": "lost"})
    card.refresh_from_db()
    assert card.status == CardStatus.REVOKED and card.revoke_reason == "lost"
    assert AuditEvent.objects.filter(object_type="card", object_id=str(card.pk)).exists()


def test_lifecycle_diagram_has_one_arrow_per_transition_and_marks_the_current_state():
    svg = ET.fromstring(lifecycle_svg("SUSPENDED"))
    arrows = svg.findall(f".//{SVG}path[@marker-end]")
    assert len(arrows) == sum(len(t.sources) for t in lifecycle.TRANSITIONS)
    marked = [g for g in svg.iter(f"{SVG}g") if g.get("aria-current") == "true"]
    assert len(marked) == 1
    assert "SUSPENDED" in "".join(marked[0].itertext())
    assert not [g for g in ET.fromstring(lifecycle_svg()).iter() if g.get("aria-current")]


def test_verify_chain_shows_the_head_and_records_the_check(client, make_user, cps4):
    card_make(cps4)
    holder_make()
    client.force_login(make_user("auditor", username="agathe"))
    response = client.post(reverse("console:audit_verify"), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert response.context["report"].ok
    event = AuditEvent.objects.get(action="audit.verify")
    assert event.actor_label == "agathe" and event.details["ok"] is True


def test_a_card_that_does_not_exist_is_a_404_page(client, operator):
    import uuid

    response = client.get(reverse("console:card", args=[uuid.uuid4()]))
    assert response.status_code == 404 and "No card" in response.content.decode()


def test_card_list_filters_by_state(client, operator, cps4):
    active = card_make(cps4, CardStatus.ACTIVE)
    card_make(cps4, CardStatus.IN_STOCK)
    response = client.get(reverse("console:cards"), {"status": "ACTIVE"})
    assert [c.pk for c in response.context["page_obj"]] == [active.pk]
    assert Card.objects.count() == 2


def test_the_new_pages_speak_french(client, operator):
    html = client.get(reverse("console:holders"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Enregistrer un porteur" in html and "Aller au contenu" in html


def test_the_card_states_speak_french(client, operator, cps4):
    card_make(cps4, CardStatus.SUSPENDED)
    french = client.get(reverse("console:cards"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Suspendue" in french and "Suspended" not in french
    english = client.get(reverse("console:cards"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Suspended" in english


def test_the_card_actions_speak_french(client, operator, cps4):
    card = card_make(cps4, CardStatus.SUSPENDED)
    page = reverse("console:card", args=[card.pk])
    french = client.get(page, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Rétablir" in french and "liste de refus" in french and "Reinstate" not in french
    assert "Porteur décédé" in french  # a revocation reason in the dialog
    english = client.get(page, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Reinstate" in english and "Holder deceased" in english
