"""Each role's main task in a real headless Chromium, with axe-core (from the npm registry, fetched
once into var/cache/) run on every page: no serious or critical violation. One form is filled with
the keyboard alone. ``CONSOLE_SCREENSHOTS=docs/console`` writes the pages at 1280×800 there."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from core.models import AuditEvent
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

    def check(self, name: str, keep: bool = True) -> None:
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
        if target and keep:
            folder = ROOT / target
            folder.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(folder / f"{name}.png"))


def new_page(browser, axe, locale="en-GB") -> Checked:  # noqa: F811 - the fixture
    context = browser.new_context(locale=locale, viewport=VIEWPORT)
    return Checked(context.new_page(), axe)


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
