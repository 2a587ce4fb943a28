"""Holder import through the console: upload, progress polled by htmx, report and the rejected
rows as CSV (the Celery task runs eagerly under the test settings)."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from cms.models import Holder
from core.models import AuditEvent
from tests.cms.test_holders import EXTRACT

pytestmark = pytest.mark.django_db


def test_import_progress_report_and_rejected_rows(
    client, make_user, django_capture_on_commit_callbacks
):
    client.force_login(make_user("issuance_operator", username="olivia"))
    upload = SimpleUploadedFile("extract.csv", EXTRACT.encode(), content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("console:holder_import"), {"file": upload})
    assert response.status_code == 302
    status_url = response["Location"]

    fragment = client.get(status_url, HTTP_HX_REQUEST="true")
    html = fragment.content.decode()
    assert "<html" not in html and 'value="100"' in html
    assert "every 1s" not in html  # finished: the polling stops
    report = fragment.context["job"]["report"]
    assert (report["total"], report["created"], len(report["rejected"])) == (5, 2, 3)
    assert Holder.objects.count() == 2
    assert AuditEvent.objects.get(action="holder.import").actor_label == "olivia"

    rejected = client.get(
        reverse("console:holder_import_rejected", args=[status_url.split("/")[-2]])
    )
    rows = list(csv.reader(io.StringIO(rejected.content.decode())))
    assert rows[0] == ["line", "national_id", "field", "reason"]
    assert {(r[0], r[2]) for r in rows[1:]} == {
        ("3", "national_id"),
        ("5", "national_id"),
        ("6", "profession"),
    }

    client.force_login(make_user("issuance_operator"))
    assert client.get(status_url).status_code == 404  # another operator's import


def test_queued_import_page_polls_until_done(client, make_user):
    client.force_login(make_user("issuance_operator"))
    upload = SimpleUploadedFile("extract.csv", EXTRACT.encode(), content_type="text/csv")
    response = client.post(reverse("console:holder_import"), {"file": upload})  # not committed
    page = client.get(response["Location"])
    assert page.context["job"]["state"] == "queued"
    assert "every 1s" in page.content.decode()
    assert client.post(reverse("console:holder_import"), {}, follow=True).status_code == 200
