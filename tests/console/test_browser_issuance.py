"""The issuance operator's day in a real headless Chromium, end to end: register a holder (with the
keyboard alone), file a request that a second operator approves in a second browser context, the
card personalized on a virtual CPS4 by a real ``python -m personalization_station`` process through
pcscd + vsmartcard-vpcd, the PIN mailer printed (the PDF opens in a new tab) and confirmed, and the
card activated from its page by another operator than the one who printed its mailer. axe-core runs
on every page opened (``tests/console/test_browser_roles.py``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cms.choices import CardStatus, RequestStatus
from cms.models import CardRequest, Holder
from tests.cardsim.conftest import pcscd  # noqa: F401 - the shared pcscd fixture
from tests.cardsim.pcscd_support import CONTACT_READER, Simulator, simulator_running
from tests.cms.mailers.pdf import codes
from tests.cms.personalization.conftest import card_key_dir, card_keys  # noqa: F401 - fixtures
from tests.console.test_browser import browser, sign_in  # noqa: F401 - browser is a fixture
from tests.console.test_browser_roles import axe_source, new_page  # noqa: F401 - axe is a fixture
from tests.pki.conftest import pki_software, software_key_dir  # noqa: F401 - fixtures

pytestmark = [pytest.mark.integration, pytest.mark.pcscd, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sim(pcscd: object, tmp_path: Path) -> Iterator[Simulator]:  # noqa: F811
    """A blank virtual CPS4 behind the machine's pcscd, reaped at the end."""
    with simulator_running(Simulator(tmp_path)) as simulator:
        yield simulator


def station(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The station program, as a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "personalization_station", *args],
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_issuance_operator_walk_from_holder_to_active_card(
    live_server: Any,
    browser: Any,  # noqa: F811 - the fixture
    axe_source: str,  # noqa: F811 - the fixture
    make_user: Any,
    pki_software: str,  # noqa: F811 - the fixture
    card_keys: Path,  # noqa: F811 - the fixture
    sim: Simulator,
    tmp_path: Path,
) -> None:
    from cardsim.card import Card as VirtualCard
    from cardsim.card import load_state
    from cms.mailers.choices import MailerStatus
    from cms.models import Card, PinMailer
    from cms.personalization.stations import station_create
    from demo import setup

    # The agency: the CPS4 product under dual control, a site with the virtual card as its stock,
    # a station enrolled by its own process with the code a security officer would hand over.
    product = setup.products_and_keys()
    product.requires_second_approval = True
    product.save()
    pool = setup.site()
    virtual = VirtualCard(load_state(sim.state))
    assert virtual.desfire_chip is not None  # a CPS4 has its contactless DESFire chip
    setup.blank_card_register(
        product=product,
        pool=pool,
        chip_serial=virtual.serial.hex(),
        desfire_uid=virtual.desfire_chip.state.uid.hex(),
    )
    issued = station_create(site_code=pool.code, name="st-accueil", caller=setup.SYSTEM)
    credential = tmp_path / "station" / "credential.json"
    enrolled = station(
        "--credential", str(credential), "enroll", "--cms", live_server.url, "--code", issued.code,
        cwd=tmp_path,
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
    make_user("issuance_operator", username="olivia")
    make_user("issuance_operator", username="oscar")
    base = live_server.url

    # --- olivia: her home and sections, then a holder registered with the keyboard alone -------
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

    # --- she files the request; she may not approve it herself -------------------------------
    page.select_option("#req-product", str(product.pk))
    page.click("text=File a new-card request")
    page.wait_for_url(re.compile(r"/console/requests/[0-9a-f-]{36}/"))
    request = CardRequest.objects.get()
    assert request.status == RequestStatus.SUBMITTED
    assert page.locator("#self-approval").is_visible()
    assert page.locator("button:has-text('Approve')").is_disabled()
    first.check("request-own")

    # --- oscar, in his own browser context, approves and queues it ------------------------------
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
    card = Card.objects.get(pk=request.card_id)
    assert card.chip_serial == virtual.serial.hex().upper()  # the card in the reader
    # the message's link, not the menu's "Renewals on the card"
    other.get_by_role("link", name="the card", exact=True).click()
    other.wait_for_url(re.compile(r"/console/cards/[0-9a-f-]{36}/"))
    assert "ALLOCATED" in (other.locator("svg.lifecycle [aria-current=true]").text_content() or "")
    second.check("card")

    # --- the station process personalizes the virtual card through pcscd ------------------------
    run = station(
        "--credential", str(credential), "run", "--reader", CONTACT_READER, "--once",
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r": done \(\d+ round trips", run.stdout), run.stdout
    card.refresh_from_db()
    assert card.status == CardStatus.ISSUED
    other.reload()
    assert "ISSUED" in (other.locator("svg.lifecycle [aria-current=true]").text_content() or "")
    mailer = PinMailer.objects.get(card=card)
    assert mailer.status == MailerStatus.QUEUED and mailer.print_count == 0
    assert mailer.reference in other.locator("main").inner_text()
    second.check("card-issued")

    # --- olivia prints the PIN mailer: the letter opens in a new tab ----------------------------
    letters: list[bytes] = []

    def keep_letter(route: Any) -> None:
        response = route.fetch()
        letters.append(response.body())
        route.fulfill(response=response)

    page.context.route(re.compile(r"/console/mailers/[0-9a-f-]{36}/print/$"), keep_letter)
    page.click("header nav >> text=PIN mailers")
    row = page.locator("tr", has_text=mailer.reference)
    assert row.is_visible()
    with page.context.expect_page() as opened:
        row.locator("button:has-text('Print')").click()
    tab = opened.value
    tab.wait_for_load_state()
    assert len(letters) == 1 and letters[0].startswith(b"%PDF"), letters
    pin, puk = codes(letters[0])
    assert pin.isdigit() and puk.isdigit()
    tab.close()
    mailer.refresh_from_db()
    assert (mailer.print_count, mailer.printed_by) == (1, "olivia")

    # --- she confirms it is enveloped: its codes are deleted ------------------------------------
    page.reload()
    row = page.locator("tr", has_text=mailer.reference)
    assert row.locator("button:has-text('Reprint')").is_visible()  # until confirmed
    first.check("mailers-printed")
    row.locator("button:has-text('Confirm printed')").click()
    dialog = page.locator("dialog[open]")
    assert dialog.is_visible()
    first.check("mailer-confirm-dialog")
    dialog.locator("button[type=submit]").click()
    page.wait_for_selector(f"text={mailer.reference} confirmed")
    mailer.refresh_from_db()
    assert mailer.status == MailerStatus.POSTED and mailer.sealed_secrets is None
    assert page.locator("tr", has_text=mailer.reference).count() == 0

    # --- oscar (not the one who printed the letter) activates the card from its page ------------
    other.reload()
    other.click("button:has-text('Activate')")
    dialog = other.locator("dialog[open]")
    assert dialog.is_visible()
    second.check("activate-dialog")
    dialog.locator("button[type=submit]").click()
    other.wait_for_selector("text=Done: activate.")
    card.refresh_from_db()
    assert card.status == CardStatus.ACTIVE and card.activated_at is not None
    assert "ACTIVE" in (other.locator("svg.lifecycle [aria-current=true]").text_content() or "")
    assert "Active" in other.locator("h1").inner_text()
    assert "{#" not in other.locator("main").inner_text()  # no template comment shown as text
    second.check("card-active")
    request.refresh_from_db()
    assert request.status == RequestStatus.DONE
