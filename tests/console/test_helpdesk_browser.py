"""The offline-unblock wizard in a real headless Chromium, as a helpdesk agent: search, card page,
identity check → challenge → response (the card library's value), limits and history updated."""

from __future__ import annotations

import pytest

from cards import unblock
from cards.products import serial_of_card_number
from cms.choices import CardStatus
from tests.cms.conftest import card_make, cps4  # noqa: F401 - fixtures
from tests.cms.test_helpdesk import MASTER, admin_store  # noqa: F401 - fixture
from tests.console.test_browser import SCREENSHOTS, browser, sign_in  # noqa: F401 - fixture

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_agent_walks_the_offline_unblock_wizard(
    live_server,
    browser,  # noqa: F811
    make_user,
    cps4,  # noqa: F811
    admin_store,  # noqa: F811
):
    card = card_make(cps4, CardStatus.ACTIVE)
    card.admin_key_version = 1
    card.save(update_fields=["admin_key_version"])
    make_user("helpdesk_agent", username="hugo")
    page = browser.new_page(locale="en-GB")
    sign_in(page, live_server.url, "hugo")
    page.click("nav >> text=Helpdesk")
    page.fill("input[name=q]", card.holder.last_name)
    page.click("button:has-text('Search')")
    page.click(f"#card-results >> text={card.card_number}")
    assert "0 of 3" in page.locator("#limits").inner_text()

    page.select_option("select[name=identity_method]", "in_person_document")
    page.fill("input[name=identity_reference]", "CNI 123456789012")
    page.fill("input[name=challenge]", "0102 0304 0506 0708")
    page.click("#unblock-form button[type=submit]")
    expected = unblock.response(
        MASTER, serial_of_card_number(card.card_number), 1, bytes.fromhex("0102030405060708")
    )
    assert page.locator("#unblock-response").inner_text() == unblock.format_code(expected)
    assert "1 of 3" in page.locator("#limits").inner_text()
    history = page.locator("#unblock-history tbody tr").first.inner_text()
    assert "CNI 123456789012" in history and unblock.format_code(expected) not in history
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "helpdesk-unblock.png"), full_page=True)

    # A mistyped challenge: a clear refusal, no response shown.
    page.fill("input[name=challenge]", "0102-0304")
    page.click("#unblock-form button[type=submit]")
    assert "16 hexadecimal digits" in page.locator(".error").inner_text()
    assert page.locator("#unblock-response").count() == 0
