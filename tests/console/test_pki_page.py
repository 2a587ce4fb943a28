"""The PKI page on the real test hierarchy (software keys): CAs, CRLs, the OCSP responder, and a
security officer's "publish now" signing CRLs on the (eager in tests) signing task."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.models import AuditEvent
from pki.choices import CrlKind
from pki.models import CrlPublication
from tests.pki.conftest import pki_software, software_key_dir  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def test_security_officer_publishes_crls_now(
    client,
    make_user,
    pki_software,  # noqa: F811 - the fixture
    django_capture_on_commit_callbacks,
):
    client.force_login(make_user("security_officer", username="sophie"))
    before = CrlPublication.objects.count()
    page = client.get(reverse("console:pki"))
    assert page.context["may_publish"]
    rows = {row["ca"].short_name: row for row in page.context["rows"]}
    assert rows["ACI-FO-PP-TEST"]["responder"] is not None  # the delegated OCSP responder
    assert "/pki/ca/ACR-FO-TEST.cer" in page.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("console:pki_publish"))
    assert response.status_code == 302
    assert CrlPublication.objects.count() > before
    assert CrlPublication.objects.filter(
        authority__short_name="ACI-FO-PP-TEST", kind=CrlKind.DELTA
    ).exists()
    assert AuditEvent.objects.filter(action="pki.publish_request", actor_label="sophie").exists()
    assert AuditEvent.objects.filter(actor_label="sophie", action__startswith="pki.crl").exists()

    page = client.get(reverse("console:pki"))
    issuing = next(r for r in page.context["rows"] if r["ca"].short_name == "ACI-FO-PP-TEST")
    assert issuing["full"] is not None and not issuing["full_late"]


def test_auditors_read_the_pki_page_without_the_publish_button(client, make_user):
    client.force_login(make_user("auditor"))
    page = client.get(reverse("console:pki"))
    assert page.status_code == 200 and not page.context["may_publish"]
    assert client.post(reverse("console:pki_publish")).status_code == 403
