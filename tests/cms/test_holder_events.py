"""Holder events from the daily extract: a holder who left, was struck off or died keeps no card
in service and no open request; one audit event each, in one import."""

from __future__ import annotations

import pytest

from cms.choices import CardStatus, RequestStatus
from cms.models import Card, CardRequest, Holder
from cms.services import requests as svc
from cms.services.holder_import import holder_import
from cms.services.holders import holder_update
from core.models import AuditEvent
from tests.cms.conftest import card_make, holder_make

pytestmark = pytest.mark.django_db

HEADER = "national_id|last_name|first_name|profession|status\n"


def _extract(status: str) -> bytes:
    return (HEADER + f"810002813839|MARTIN|Claire|10|{status}\n").encode()


def _statuses(certs):
    for cert in certs:
        cert.refresh_from_db()
    return {(c.status, c.revocation_reason) for c in certs}


@pytest.mark.parametrize(
    "status, reason, crl_reason",
    [
        ("décédé", "deceased", "cessation_of_operation"),
        ("left_profession", "holder_left", "cessation_of_operation"),
        ("radié", "struck_off", "privilege_withdrawn"),
    ],
)
def test_a_holder_marked_inactive_in_the_extract_loses_every_card_and_open_request(
    status, reason, crl_reason, cps4, cps3, link_certificates, caller_for
):
    operator = caller_for("issuance_operator")
    holder = holder_make(national_id="810002813839", last_name="MARTIN", first_name="Claire")
    active = card_make(cps4, CardStatus.ACTIVE, holder=holder)
    certs = link_certificates(active)
    legacy = card_make(cps3, CardStatus.ISSUED, holder=holder)  # issued, never activated
    renewal = svc.request_create(
        holder_id=holder.pk, kind="renewal", product_id=cps4.pk, caller=operator,
        replaces_card_id=active.pk,
    )  # fmt: skip
    svc.request_submit(request_id=renewal.pk, caller=operator)
    other = card_make(cps4, CardStatus.ACTIVE)  # another holder's card: untouched

    report = holder_import(content=_extract(status), caller=operator)
    assert (report.updated, report.cards_revoked, report.requests_cancelled) == (1, 2, 1)
    for card in (active, legacy):
        card.refresh_from_db()
        assert (card.status, card.revoke_reason) == (CardStatus.REVOKED, reason)
    assert _statuses(certs) == {("revoked", crl_reason)}
    renewal.refresh_from_db()
    assert renewal.status == RequestStatus.REJECTED and "cancelled" in renewal.decision_note
    other.refresh_from_db()
    assert other.status == CardStatus.ACTIVE
    assert AuditEvent.objects.filter(action="card.revoke").count() == 2
    assert AuditEvent.objects.filter(action="request.cancel").count() == 1
    event = AuditEvent.objects.get(action="holder.import")
    assert event.details["cards_revoked"] == 2

    events = AuditEvent.objects.count()
    again = holder_import(content=_extract(status), caller=operator)
    assert (again.unchanged, again.cards_revoked) == (1, 0)
    assert AuditEvent.objects.count() == events


def test_a_re_registered_holder_gets_new_cards_never_the_old_ones(cps4, caller_for):
    operator = caller_for("issuance_operator")
    holder = holder_make(national_id="810002813839")
    old = card_make(cps4, CardStatus.ACTIVE, holder=holder)
    holder_update(holder_id=holder.pk, changes={"status": "left_profession"}, caller=operator)
    old.refresh_from_db()
    assert (old.status, old.revoke_reason) == (CardStatus.REVOKED, "holder_left")
    holder_import(content=_extract("actif"), caller=operator)
    holder.refresh_from_db()
    old.refresh_from_db()
    assert holder.status == "active" and old.status == CardStatus.REVOKED
    card_make(cps4)
    request = svc.request_create(
        holder_id=holder.pk, kind="new", product_id=cps4.pk, caller=operator
    )
    svc.request_submit(request_id=request.pk, caller=operator)
    request = svc.request_queue(request_id=request.pk, caller=caller_for("issuance_operator"))
    assert request.card_id != old.pk
    assert Card.objects.filter(holder=holder, status=CardStatus.ALLOCATED).count() == 1
    assert CardRequest.objects.filter(holder=holder).count() == 1
    assert Holder.objects.count() == 1
