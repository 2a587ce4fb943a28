"""The PIN mailer print queue through the console: print (a PDF, inline), reprint before
confirmation, confirm (codes deleted), each audited; the page itself never shows a code."""

from __future__ import annotations

import pytest
from django.urls import reverse

from cms.mailers.choices import MailerStatus
from core.models import AuditEvent
from tests.cms.mailers.conftest import (  # noqa: F401 - fixtures
    card_key_dir,
    card_keys,
    issued_cards,
    pin_of,
    queued_mailers,
    seal,
    site,
)

pytestmark = pytest.mark.django_db


def test_print_reprint_and_confirm_a_mailer(client, make_user, queued_mailers):  # noqa: F811
    (mailer,) = queued_mailers(1)
    n = int(mailer.card.chip_serial[2:], 16)
    client.force_login(make_user("issuance_operator", username="olivia"))
    page = client.get(reverse("console:mailers"))
    html = page.content.decode()
    assert mailer.reference in html and pin_of(n) not in html
    confirm = reverse("console:mailer_confirm", args=[mailer.pk])
    assert confirm not in html  # nothing to confirm before a print

    refused = client.post(confirm, follow=True)
    assert "never printed" in refused.content.decode()

    printed = client.post(reverse("console:mailer_print", args=[mailer.pk]))
    assert printed["Content-Type"] == "application/pdf"
    assert printed["Content-Disposition"].startswith("inline")
    assert printed.content.startswith(b"%PDF")
    again = client.post(reverse("console:mailer_print", args=[mailer.pk]))
    assert again.content.startswith(b"%PDF")
    assert "Reprint" in client.get(reverse("console:mailers")).content.decode()
    prints = AuditEvent.objects.filter(action="pin_mailer.print", object_id=str(mailer.pk))
    assert prints.count() == 2 and {e.actor_label for e in prints} == {"olivia"}

    client.post(confirm)
    mailer.refresh_from_db()
    assert mailer.status == MailerStatus.POSTED and mailer.sealed_secrets is None
    assert AuditEvent.objects.filter(action="pin_mailer.post", object_id=str(mailer.pk)).exists()
    assert list(client.get(reverse("console:mailers")).context["page_obj"]) == []
