"""The renewals page in a real headless Chromium with axe-core: an issuance operator abandons an
interrupted renewal through the confirmation dialog, a reason typed."""

from __future__ import annotations

import pytest

from cms.choices import CardStatus
from cms.models import CardRenewal
from core.models import AuditEvent
from tests.cms.conftest import card_make, cps4  # noqa: F401 - the product fixture
from tests.console.test_browser import browser, sign_in  # noqa: F401 - browser is a fixture
from tests.console.test_browser_roles import axe_source, new_page  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


def test_operator_abandons_an_interrupted_renewal_in_the_dialog(
    live_server,
    browser,  # noqa: F811 - the fixture
    axe_source,  # noqa: F811 - the fixture
    make_user,
    cps4,  # noqa: F811 - the fixture
):
    card = card_make(cps4, CardStatus.ACTIVE)
    renewal = CardRenewal.objects.create(
        card=card, status=CardRenewal.Status.INTERRUPTED, phase="write", error="card removed"
    )
    make_user("issuance_operator", username="olivia")
    checked = new_page(browser, axe_source)
    page = checked.page
    sign_in(page, live_server.url, "olivia")
    page.click("header nav >> text=Renewals on the card")
    page.wait_for_selector(f"text={card.card_number}")
    checked.check("renewals-open")
    page.click("button:has-text('Abandon')")
    dialog = page.locator("dialog[open]")
    dialog.locator("button[type=submit]").click()  # the reason is required: nothing is sent
    renewal.refresh_from_db()
    assert renewal.status == CardRenewal.Status.INTERRUPTED
    dialog.locator("input[name=reason]").fill("card destroyed by the holder")
    checked.check("renewals-open-dialog")
    dialog.locator("button[type=submit]").click()
    page.wait_for_selector("text=Renewal abandoned")
    page.wait_for_selector("text=No renewal in progress.")
    checked.check("renewals-open-done")
    renewal.refresh_from_db()
    assert renewal.status == CardRenewal.Status.FAILED
    event = AuditEvent.objects.get(action="card.renewal_abandon")
    assert (
        event.actor_label == "olivia" and event.details["reason"] == "card destroyed by the holder"
    )
