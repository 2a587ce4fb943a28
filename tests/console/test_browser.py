"""The console in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.db import transaction

from core.actors import Actor
from core.audit import audit_event_create

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
    # synchronous and safe here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/console/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("main button[type=submit]")


def test_auditor_signs_in_and_filters_the_audit_log(live_server, browser, make_user):
    make_user("auditor", username="agathe")
    with transaction.atomic():
        for n in range(3):
            audit_event_create(
                actor=Actor.system("t"), action="card.suspend", object_type="card", object_id=str(n)
            )
        audit_event_create(
            actor=Actor.system("t"), action="pki.crl_publish", object_type="ca", object_id="1"
        )
    page = browser.new_page(locale="en-GB")
    sign_in(page, live_server.url, "agathe")
    assert page.locator("h1").inner_text() == "Welcome, agathe"
    page.click("nav >> text=Audit log")
    rows = page.locator("#audit-table tbody tr")
    assert rows.count() == 5  # the four events and agathe's own sign-in, newest first
    assert "auth.sign_in" in rows.first.inner_text()
    page.fill("input[name=action]", "pki.")
    page.wait_for_function("document.querySelectorAll('#audit-table tbody tr').length === 1")
    assert "pki.crl_publish" in rows.first.inner_text()
    assert "action=pki." in page.url  # the filter is in the address, so it can be shared
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "audit.png"), full_page=True)


def test_helpdesk_agent_sees_no_audit_section_and_is_refused(live_server, browser, make_user):
    make_user("helpdesk_agent", username="hugo")
    page = browser.new_page(locale="fr-FR")
    sign_in(page, live_server.url, "hugo")
    assert page.locator("h1").inner_text() == "Bienvenue, hugo"
    hrefs = page.locator("header nav a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert "/console/audit/" not in hrefs and "/console/helpdesk/" in hrefs
    response = page.goto(f"{live_server.url}/console/audit/")
    assert response is not None and response.status == 403


def test_wrong_password_stays_on_the_login_page(live_server, browser, make_user):
    make_user("auditor", username="ines")
    page = browser.new_page(locale="en-GB")
    page.goto(f"{live_server.url}/console/login/")
    page.fill("input[name=username]", "ines")
    page.fill("input[name=password]", "wrong")
    page.click("main button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "Wrong user name or password."
