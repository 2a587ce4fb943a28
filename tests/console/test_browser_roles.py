"""Each role's main task in a real headless Chromium, with axe-core (from the npm registry, fetched
once into var/cache/) run on every page: no serious or critical violation. One form is filled with
the keyboard alone. ``CONSOLE_SCREENSHOTS=docs/console`` writes the pages at 1280×800 there."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from cms.choices import CardStatus, RequestStatus
from cms.models import CardRequest, Holder
from core.models import AuditEvent
from tests.cms.conftest import card_make
from tests.console.test_browser import browser, sign_in  # noqa: F401 - browser is a fixture
from tests.pki.conftest import pki_software, software_key_dir  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
AXE_DIR = ROOT / "var" / "cache" / "axe-core"
AXE_VERSION = "4"
VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="session")
def axe_source() -> str:
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        AXE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(AXE_DIR),
             f"axe-core@{AXE_VERSION}"],
            check=True,
            capture_output=True,
            timeout=300,
        )  # fmt: skip
    return script.read_text()


class Checked:
    """A page wrapper: ``check(name)`` runs axe-core on what is shown and keeps a screenshot."""

    def __init__(self, page, axe: str) -> None:
        self.page, self.axe = page, axe

    def check(self, name: str) -> None:
        self.page.wait_for_load_state("load")
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.add_script_tag(content=self.axe)
        violations = self.page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => ({id: v.id, impact: v.impact, help: v.help,
                            nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))"""
        )
        assert violations == [], f"{name}: {violations}"
        target = os.environ.get("CONSOLE_SCREENSHOTS")
        if target:
            folder = ROOT / target
            folder.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(folder / f"{name}.png"))


def new_page(browser, axe, locale="en-GB") -> Checked:  # noqa: F811 - the fixture
    context = browser.new_context(locale=locale, viewport=VIEWPORT)
    return Checked(context.new_page(), axe)


def test_issuance_operators_register_file_and_approve_in_two_sessions(
    live_server,
    browser,  # noqa: F811 - the fixture
    axe_source,
    make_user,
    cps4,
):
    cps4.requires_second_approval = True
    cps4.save()
    card_make(cps4, CardStatus.IN_STOCK)  # the blank card the request will take
    make_user("issuance_operator", username="olivia")
    make_user("issuance_operator", username="oscar")
    base = live_server.url

    first = new_page(browser, axe_source)
    page = first.page
    sign_in(page, base, "olivia")
    first.check("home-operator")
    page.click("header nav >> text=PIN mailers")
    first.check("mailers")
    page.click("header nav >> text=Stock")
    first.check("stock")
    page.click("header nav >> text=Holders")
    first.check("holders")
    page.click("text=Import holders")
    first.check("holder-import")
    page.go_back()
    page.wait_for_url(re.compile(r"/console/holders/$"))

    # The registration form, with the keyboard alone: skip link, fields in tab order, Enter.
    page.click("text=Register a holder")
    page.wait_for_url(re.compile(r"/console/holders/new/$"))
    page.wait_for_load_state("load")  # the keys go to the form's page, not the list's
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "id_national_id"
    for value in ("810002813839", "Martin", "Claire"):
        page.keyboard.type(value)
        page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # profession (Médecin), then card type and status as they are
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.type("1 rue de la Paix")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.type("75002")
    page.keyboard.press("Tab")
    page.keyboard.type("Paris")
    first.check("holder-form")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/console/holders/[0-9a-f-]{36}/"))
    holder = Holder.objects.get()
    assert (holder.last_name, holder.city, holder.departement) == ("MARTIN", "Paris", "75")
    first.check("holder")

    page.select_option("#req-product", str(cps4.pk))
    page.click("text=File a new-card request")
    page.wait_for_url(re.compile(r"/console/requests/[0-9a-f-]{36}/"))
    request = CardRequest.objects.get()
    assert request.status == RequestStatus.SUBMITTED
    assert page.locator("#self-approval").is_visible()
    assert page.locator("button:has-text('Approve')").is_disabled()
    first.check("request-own")

    second = new_page(browser, axe_source)
    other = second.page
    sign_in(other, base, "oscar")
    other.click("header nav >> text=Requests")
    second.check("requests")
    assert "olivia" in other.locator("table").first.inner_text()
    other.click(f"a[href='/console/requests/{request.pk}/']")
    other.wait_for_url(re.compile(r"/console/requests/[0-9a-f-]{36}/"))
    other.click("button:has-text('Approve')")
    dialog = other.locator("dialog[open]")
    assert dialog.is_visible()
    second.check("approve-dialog")
    dialog.locator("input[name=note]").fill("identity checked")
    dialog.locator("button[type=submit]").click()
    other.wait_for_selector("text=Request approved.")
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED

    other.click("button:has-text('Queue for personalization')")
    other.locator("dialog[open] button[type=submit]").click()
    other.wait_for_selector("text=A blank card is set aside")
    request.refresh_from_db()
    assert request.status == RequestStatus.QUEUED and request.card_id is not None
    other.click("text=the card")
    other.wait_for_url(re.compile(r"/console/cards/[0-9a-f-]{36}/"))
    assert "ALLOCATED" in (other.locator("svg.lifecycle [aria-current=true]").text_content() or "")
    second.check("card")


def test_auditor_filters_the_log_and_verifies_the_chain(
    live_server,
    browser,  # noqa: F811 - the fixture
    axe_source,
    make_user,
):
    make_user("auditor", username="agathe")
    make_user("issuance_operator", username="olivia")  # nothing audited yet but the accounts
    checked = new_page(browser, axe_source)
    page = checked.page
    sign_in(page, live_server.url, "agathe")
    checked.check("home-auditor")
    page.click("header nav >> text=Audit log")
    page.fill("input[name=action]", "audit.")
    page.click("text=Verify the chain")
    page.wait_for_selector("#verify-result >> text=Audit chain intact")
    assert AuditEvent.objects.filter(action="audit.verify", actor_label="agathe").count() == 1
    page.reload()
    page.wait_for_selector("#audit-table >> text=audit.verify")
    checked.check("audit")


def test_security_officer_creates_a_station_and_publishes_crls(
    live_server,
    browser,  # noqa: F811 - the fixture
    axe_source,
    make_user,
    pki_software,  # noqa: F811 - the fixture
):
    from cms.models import SitePool, Station
    from pki.models import CrlPublication

    SitePool.objects.create(code="paris-11", name="Paris 11")
    make_user("security_officer", username="sophie")
    checked = new_page(browser, axe_source)
    page = checked.page
    sign_in(page, live_server.url, "sophie")
    checked.check("home-security-officer")

    page.click("header nav >> text=Stations")
    checked.check("stations")
    page.fill("#st-name", "st-accueil")
    page.click("text=Create and show its enrollment code")
    code = page.locator("#enrollment-code").inner_text().strip()
    assert len(code) >= 8 and Station.objects.filter(name="st-accueil").exists()
    checked.check("station-code")
    page.click("text=The station's page")
    assert code not in page.content()  # shown once
    checked.check("station")

    page.click("header nav >> text=Accounts")
    checked.check("accounts")
    page.click("header nav >> text=PKI")
    before = CrlPublication.objects.count()
    page.click("button:has-text('Publish now')")
    page.locator("dialog[open] button[type=submit]").click()
    page.wait_for_selector("text=Publication queued")
    assert CrlPublication.objects.count() > before
    checked.check("pki")
