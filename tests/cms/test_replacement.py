"""Lost, stolen and damaged cards: one act revokes and files an expedited replacement; a damaged
card and a temporary card are revoked (superseded) when the replacement is activated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cms.choices import CardStatus, ProductStatus, RequestStatus
from cms.models import Card, CardRequest, DenyListEntry, Product, SitePool, Station
from cms.services import requests as svc
from cms.services.cards import card_transition
from cms.services.replacement import card_report_loss, replacement_temporary_link
from core.errors import BadInput, Conflict, Forbidden, PolicyViolation
from core.models import AuditEvent
from tests.cms.conftest import CPS4_DEFINITION, card_make, holder_make

pytestmark = pytest.mark.django_db


def _statuses(certs):
    for cert in certs:
        cert.refresh_from_db()
    return {(c.status, c.revocation_reason) for c in certs}


def _issued_replacement(request: CardRequest, approver, system) -> Card:
    """Approve, queue (a blank card of the product), personalize and issue the replacement."""
    svc.request_approve(request_id=request.pk, caller=approver)
    request = svc.request_queue(request_id=request.pk, caller=system)
    svc.request_personalization_start(request_id=request.pk, caller=system)
    svc.request_complete(request_id=request.pk, caller=system)
    return Card.objects.get(pk=request.card_id)


def test_a_lost_card_is_revoked_denied_and_replaced_in_one_act(cps4, link_certificates, caller_for):
    card = card_make(cps4, CardStatus.ACTIVE)
    certs = link_certificates(card)
    helpdesk = caller_for("helpdesk_agent")
    report = card_report_loss(
        card_id=card.pk, reason="lost", identity_check="phone, date of birth", caller=helpdesk
    )
    card.refresh_from_db()
    assert report.revoked and card.status == CardStatus.REVOKED and card.revoke_reason == "lost"
    assert _statuses(certs) == {("revoked", "key_compromise")}
    entry = DenyListEntry.objects.get(card=card)
    assert (entry.desfire_uid, entry.reason) == (card.desfire_uid, "revoked")
    request = report.request
    assert (request.kind, request.replaces_id, request.expedited) == ("replacement", card.pk, True)
    assert request.status == RequestStatus.SUBMITTED  # a replacement waits for a second person
    assert request.identity_check == "phone, date of birth"
    event = AuditEvent.objects.get(action="card.report_loss")
    assert event.details["identity_check"] == "phone, date of birth"
    assert event.details["request_id"] == str(request.pk)

    events = AuditEvent.objects.count()
    again = card_report_loss(
        card_id=card.pk, reason="lost", identity_check="phone, date of birth", caller=helpdesk
    )
    assert again.request.pk == request.pk and not again.revoked
    assert AuditEvent.objects.count() == events
    assert CardRequest.objects.count() == 1


def test_the_expedited_replacement_is_claimed_before_older_ordinary_jobs(
    cps4, link_certificates, caller_for, system
):
    from cms.personalization.claims import job_claim
    from cms.personalization.jobs import jobs_sync

    operator = caller_for("issuance_operator")
    for _ in range(3):
        card_make(cps4)  # blank stock
    ordinary_holder = holder_make(national_id="810002813847", last_name="ORDINARY")
    ordinary = svc.request_create(
        holder_id=ordinary_holder.pk, kind="new", product_id=cps4.pk, caller=operator
    )
    svc.request_submit(request_id=ordinary.pk, caller=operator)
    svc.request_queue(request_id=ordinary.pk, caller=system)
    jobs_sync()  # the ordinary job is older

    lost = card_make(cps4, CardStatus.ACTIVE)
    link_certificates(lost)
    report = card_report_loss(
        card_id=lost.pk, reason="stolen", identity_check="in person, ID card",
        caller=caller_for("helpdesk_agent"),
    )  # fmt: skip
    svc.request_approve(request_id=report.request.pk, caller=operator)
    svc.request_queue(request_id=report.request.pk, caller=system)
    jobs_sync()
    station = Station.objects.create(
        name="bench-1", site=SitePool.objects.create(code="site-1", name="Site"), status="active"
    )
    first = job_claim(station=station, identity=None)
    assert first is not None and first.request_id == report.request.pk
    second = job_claim(station=station, identity=None)
    assert second is not None and second.request_id == ordinary.pk


def test_a_damaged_card_stays_in_service_until_its_replacement_is_activated(
    cps4, link_certificates, caller_for, system
):
    card = card_make(cps4, CardStatus.ACTIVE)
    certs = link_certificates(card)
    card_make(cps4)  # the blank for the replacement
    report = card_report_loss(
        card_id=card.pk, reason="damaged", identity_check="card returned at the desk",
        caller=caller_for("helpdesk_agent"),
    )  # fmt: skip
    card.refresh_from_db()
    assert not report.revoked and card.status == CardStatus.ACTIVE
    assert not report.request.expedited and report.request.loss_reason == "damaged"
    assert _statuses(certs) == {("valid", "")}
    new = _issued_replacement(report.request, caller_for("security_officer"), system)
    card_transition(card_id=new.pk, transition="activate", caller=caller_for("helpdesk_agent"))
    card.refresh_from_db()
    assert (card.status, card.revoke_reason) == (CardStatus.REVOKED, "damaged")
    assert _statuses(certs) == {("revoked", "superseded")}
    activation = AuditEvent.objects.filter(action="card.activate", object_id=str(new.pk)).get()
    assert activation.details["superseded"] == [str(card.pk)]


def test_the_temporary_card_is_revoked_when_the_replacement_is_activated(
    cps4, link_certificates, caller_for, system
):
    temporary_product = Product.objects.create(
        name="CPS4-TEMP", version="1", status=ProductStatus.ISSUED, validity_years=1,
        definition={**CPS4_DEFINITION, "name": "CPS4-TEMP", "temporary": True},
        definition_sha256="2" * 64,
    )  # fmt: skip
    helpdesk = caller_for("helpdesk_agent")
    card = card_make(cps4, CardStatus.ACTIVE)
    link_certificates(card)
    card_make(cps4)  # the blank for the replacement
    report = card_report_loss(
        card_id=card.pk, reason="lost", identity_check="in person", caller=helpdesk
    )
    ordinary = card_make(cps4, CardStatus.ISSUED, holder=card.holder)
    with pytest.raises(PolicyViolation):
        replacement_temporary_link(
            request_id=report.request.pk, card_id=ordinary.pk, caller=helpdesk
        )
    temporary = card_make(temporary_product, CardStatus.ISSUED, holder=card.holder)
    temp_certs = link_certificates(temporary, status="on_hold")
    replacement_temporary_link(request_id=report.request.pk, card_id=temporary.pk, caller=helpdesk)
    card_transition(card_id=temporary.pk, transition="activate", caller=helpdesk)
    new = _issued_replacement(report.request, caller_for("issuance_operator"), system)
    card_transition(card_id=new.pk, transition="activate", caller=helpdesk)
    temporary.refresh_from_db()
    new.refresh_from_db()
    assert (temporary.status, temporary.revoke_reason) == (CardStatus.REVOKED, "superseded")
    assert _statuses(temp_certs) == {("revoked", "superseded")}
    assert new.status == CardStatus.ACTIVE


def test_bad_reports_are_refused_and_change_nothing(cps4, caller_for):
    card = card_make(cps4, CardStatus.ACTIVE)
    helpdesk = caller_for("helpdesk_agent")
    with pytest.raises(BadInput):
        card_report_loss(card_id=card.pk, reason="lost", identity_check="  ", caller=helpdesk)
    with pytest.raises(BadInput):
        card_report_loss(card_id=card.pk, reason="forgotten", identity_check="x", caller=helpdesk)
    with pytest.raises(Forbidden):
        card_report_loss(
            card_id=card.pk, reason="lost", identity_check="x", caller=caller_for("auditor")
        )
    with pytest.raises(Conflict):
        card_report_loss(
            card_id=card_make(cps4).pk, reason="lost", identity_check="x", caller=helpdesk
        )
    card.refresh_from_db()
    assert card.status == CardStatus.ACTIVE and not CardRequest.objects.exists()
    assert not AuditEvent.objects.filter(action="card.report_loss").exists()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_one_api_call_leaves_the_certificates_revoked_in_ocsp_and_the_next_delta_crl(
    cps4, link_certificates, api_client_for, live_server: Any, tmp_path: Path
):
    from core.actors import Actor
    from pki import services
    from pki.choices import CrlKind
    from pki.models import CertificateAuthority
    from tests.pki.helpers import ISSUING, ROOT, openssl, pem, write

    actor = Actor.system("tests")
    services.crl_publish(authority=ISSUING, kind=CrlKind.FULL, actor=actor)
    card = card_make(cps4, CardStatus.ACTIVE)
    certs = link_certificates(card)
    root = CertificateAuthority.objects.get(short_name=ROOT)
    issuing = CertificateAuthority.objects.get(short_name=ISSUING)
    issuing_pem = write(tmp_path / "issuing.pem", pem(issuing.certificate_der))
    write(tmp_path / "chain.pem", pem(root.certificate_der) + issuing_pem.read_bytes())

    client = api_client_for("helpdesk_agent")
    response = client.post(
        f"/api/v1/cards/{card.pk}/report-loss",
        {"reason": "lost", "identity_check": "phone, date of birth"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["revoked"] is True and body["card"]["status"] == "REVOKED"
    assert body["request"]["expedited"] is True and body["request"]["kind"] == "replacement"

    for cert in certs:
        path = write(tmp_path / f"c{cert.pk}.pem", pem(cert.der))
        done = openssl(
            "ocsp", "-issuer", issuing_pem, "-cert", path, "-url", f"{live_server.url}/ocsp",
            "-CAfile", tmp_path / "chain.pem", "-no_nonce",
        )  # fmt: skip
        assert "Response verify OK" in done.stderr, done.stderr
        assert f"{path}: revoked" in done.stdout and "keyCompromise" in done.stdout

    services.crl_publish(authority=ISSUING, kind=CrlKind.DELTA, actor=actor)
    delta = write(tmp_path / "delta.crl", client.get(f"/pki/crl/{ISSUING}-delta.crl").content)
    done = openssl("crl", "-inform", "DER", "-in", delta, "-CAfile", tmp_path / "chain.pem")
    assert "verify OK" in done.stderr + done.stdout
    text = openssl("crl", "-inform", "DER", "-in", delta, "-noout", "-text").stdout
    assert "Delta CRL Indicator" in text and text.count("Key Compromise") == 2
    listed = text.replace(":", "")
    assert all(f"{int(cert.serial):X}" in listed for cert in certs)

    bad = client.post(f"/api/v1/cards/{card.pk}/report-loss", {"reason": "lost"}, format="json")
    assert bad.status_code == 400 and "identity_check" in bad.json()["extra"]["fields"]
