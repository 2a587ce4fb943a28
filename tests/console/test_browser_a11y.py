"""Every console page in a real headless Chromium, for every role allowed to open it: axe-core
(no serious or critical violation) and the keyboard alone (every interactive element reached by
Tab with a visible focus ring, every form has a submit button Tab reaches, every confirmation
dialog opens with Enter, keeps focus inside, closes with Escape and gives focus back).

The pages come from the URL conf (every console view that declares its roles, as the roles ×
pages matrix), not from a list kept here: a page added later is walked without touching this
file, and a page whose URL parameter has no object here fails until one is added to ``objects``.
One browser, one signed-in context per role, all pages in one loop."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.urls import reverse

from core.roles import Role
from tests.cms.conftest import _rpps, card_make, cps3, cps4, holder_make  # noqa: F401 - fixtures
from tests.cms.mailers.conftest import (  # noqa: F401 - fixtures
    issued_cards,
    queued_mailers,
    seal,
    site,
)
from tests.cms.personalization.conftest import card_key_dir, card_keys  # noqa: F401 - fixtures
from tests.console.test_browser import browser, sign_in  # noqa: F401 - browser is a fixture
from tests.console.test_browser_roles import Checked, axe_source, new_page  # noqa: F401
from tests.console.test_pages import PAGES
from tests.pki.conftest import pki_software, software_key_dir  # noqa: F401 - fixtures

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PEOPLE = (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT, Role.SECURITY_OFFICER, Role.AUDITOR)
# Console URLs that answer a file, not a page (checked to be one).
DOWNLOADS = {"migration-exceptions-csv", "holder_import_rejected"}
# Pages shown in docs/console/ when CONSOLE_SCREENSHOTS is set (the others come from the walks).
SHOWN = {
    "migration",
    "migration-wave",
    "migration-exceptions",
    "helpdesk",
    "helpdesk-card",
    "contactless",
    "renewal-campaign",
    "card-report-loss",
    "bulk-revocations",
}

# What can take keyboard focus, and whether it is shown (a closed dialog's content is not).
FOCUSABLE = """() => {
  const sel = 'a[href], button:not(:disabled), input:not([type=hidden]):not(:disabled),'
    + ' select:not(:disabled), textarea:not(:disabled), summary, [tabindex]:not([tabindex="-1"])';
  const shown = (el) => {
    if (el.closest('dialog:not([open])')) return false;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    return style.visibility !== 'hidden' && (box.width > 0 || box.height > 0);
  };
  const radios = new Set();
  return [...document.querySelectorAll(sel)].filter(shown).filter((el) => {
    if (el.type !== 'radio') return true;  // Tab enters a radio group once
    const key = (el.form ? el.form.id : '') + el.name;
    if (radios.has(key)) return false;
    radios.add(key);
    return true;
  }).map((el, n) => {
    el.dataset.kb = String(n);
    return {kb: String(n), what: el.outerHTML.slice(0, 120)};
  });
}"""

# The focused element, whether its focus is drawn (an outline or a ring), and where it is.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const drawn = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0)
    || style.boxShadow !== 'none';
  return {kb: el.dataset.kb || null, drawn, what: el.outerHTML.slice(0, 120),
          dialog: el.closest('dialog') ? el.closest('dialog').id : null};
}"""

# How many controls a dialog holds.
CONTROLS_IN = """(id) => document.getElementById(id)
  .querySelectorAll('button, input:not([type=hidden]), select, textarea, a[href]').length"""

# Pages only a form's answer shows: (role, page with the form, (field, keys typed or pressed:
# "|" between them), what the answer shows, its name).
KEYS = {"Enter", "Space", "Tab"}
BATCH_FILE = {
    "name": "lot-2.csv",
    "mimeType": "text/csv",
    "buffer": b"chip_serial,desfire_uid,transport_key_version\n8025000009000000002,04A1B2C3D4E5F7,1\n",
}
ANSWERS = (
    (
        Role.SECURITY_OFFICER,
        "console:accounts",
        (("#acc-username", "Tab|Space"), ("#acc-username", "new-clerk|Enter")),
        "#new-password",
        "account created",
    ),
    (
        Role.SECURITY_OFFICER,
        "console:stations",
        (("#st-name", "st-2|Enter"),),
        "#enrollment-code",
        "station created",
    ),
    (
        Role.ISSUANCE_OPERATOR,
        "console:stock",
        (("#b-file", "file:"), ("#b-vendor", "cardsim"), ("#b-ref", "lot-2|Enter")),
        "text=Register these cards",
        "batch preview",
    ),
    (
        Role.ISSUANCE_OPERATOR,
        "console:holder_create",
        (("#id_national_id", "810002813839|Enter"),),
        "[aria-invalid=true]",
        "holder form refused",
    ),
    (
        Role.HELPDESK_AGENT,
        "console:helpdesk",
        (("input[name=q]", "MARTIN|Enter"),),
        "#card-results",
        "helpdesk results",
    ),
)

# The markup of <main> without its words (whether an element has text is kept) nor CSRF tokens; the
# header is checked on each role's first page.
SHAPE = """() => {
  const shape = (el) => el.tagName + '['
    + [...el.attributes].filter((a) => !(a.name === 'value' && el.name === 'csrfmiddlewaretoken'))
        .map((a) => a.name + '=' + a.value).join(',')
    + ']' + ([...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()) ? 'T' : '')
    + '(' + [...el.children].map(shape).join('') + ')';
  return shape(document.querySelector('main'));
}"""

# Each focus the keys move, as FOCUSED sees it, kept in window.kbLog (read after a round of Tabs).
FOCUS_LOG = (
    """() => {
  window.kbLog = [];
  if (window.kbLogging) return;
  window.kbLogging = true;
  document.addEventListener('focusin', () => window.kbLog.push(("""
    + FOCUSED
    + """)()));
}"""
)

# Forms on view without a submit button of their own: they cannot be sent with Enter.
FORMS_WITHOUT_SUBMIT = """() => [...document.forms]
  .filter((f) => !f.closest('dialog:not([open])') && f.getClientRects().length > 0)
  .filter((f) => ![...f.elements].some((e) => (e.type === 'submit' || e.type === 'image')
                                               && !e.disabled))
  .map((f) => f.outerHTML.slice(0, 160))"""


@pytest.fixture
def objects(
    make_user: Any,
    cps4: Any,  # noqa: F811 - the fixture
    cps3: Any,  # noqa: F811 - the fixture
    site: Any,  # noqa: F811 - the fixture
    queued_mailers: Any,  # noqa: F811 - the fixture
    pki_software: str,  # noqa: F811 - the fixture
) -> dict[str, Any]:
    """An agency with something on every page, and the value of each console URL parameter."""
    from django.core.cache import cache

    from cms.callers import Caller
    from cms.choices import ApprovalStatus, CardStatus, RequestKind
    from cms.models import CardTransitionApproval, RelyingParty
    from cms.personalization.stations import station_create, station_enroll
    from cms.services.holder_import import holder_import
    from cms.services.requests import request_create, request_submit
    from cms.services.stock import stock_batch_register
    from core.actors import Actor
    from cps3.generator import Rates, csv_bytes, export_rows, holder_rows
    from cps3.inventory import cps3_import
    from cps3.waves import WaveSpec, wave_create, wave_launch_request
    from demo.setup import SYSTEM, holder_demo

    people = {role: make_user(role.value, username=role.value.replace("_", "-")) for role in PEOPLE}
    filer = make_user("issuance_operator", username="olivia")
    holder = holder_demo()
    card = card_make(cps4, CardStatus.ACTIVE, holder=holder)
    card.admin_key_version = 1
    card.save(update_fields=["admin_key_version"])
    newcomer = holder_make(national_id=_rpps(900), last_name="DURAND", first_name="Louis")
    request = request_create(
        holder_id=newcomer.pk,
        kind=RequestKind.NEW,
        product_id=cps4.pk,
        pool_id=site.pk,
        caller=Caller.for_user(filer),
    )
    request_submit(request_id=request.pk, caller=Caller.for_user(filer))
    approval = CardTransitionApproval.objects.create(
        card=card, transition="reinstate", status=ApprovalStatus.PENDING, requested_by=filer
    )
    queued_mailers(2)
    stock_batch_register(
        vendor="cardsim",
        reference="lot-1",
        product_id=cps4.pk,
        content=b"chip_serial,desfire_uid,transport_key_version\n8025000009000000001,04A1B2C3D4E5F6,1\n",
        caller=SYSTEM,
    )
    station = station_enroll(
        code=station_create(site_code=site.code, name="st-accueil", caller=SYSTEM).code
    ).station
    # The CPS3 migration: holders and their CPS3 cards imported (some unknown: exceptions), a
    # wave whose launch one operator asked for and a second may approve.
    rates = Rates(**{n: 0.0 for n in Rates.__dataclass_fields__} | {"holder_unknown": 0.1})
    holder_import(content=csv_bytes(holder_rows(12, seed=9, rates=rates)), caller=SYSTEM)
    export = csv_bytes(export_rows(12, seed=9, rates=rates))
    cps3_import(
        stream=io.BytesIO(export), filename="cps3.csv", size=len(export), actor=Actor.system("t")
    )
    wave = wave_create(
        spec=WaveSpec(
            name="ouest", pool_id=site.pk, daily_capacity=5, start_on=dt.date(2030, 1, 1)
        ),
        user=filer,
    )
    wave_launch_request(wave_id=wave.pk, user=filer, reason="ouest, janvier")
    RelyingParty.objects.create(name="Hôpital", contact="dsi@example.org", public_key_pem="-")
    import_id = "a" * 32
    cache.set(
        f"cms:holder-import:{import_id}:state",
        {
            "state": "done",
            "rows": 2,
            "estimate": 2,
            "user_id": people[Role.ISSUANCE_OPERATOR].pk,
            "report": {
                "rejected": [{"line": 3, "national_id": "1", "errors": {"national_id": "invalid"}}]
            },
        },
    )
    return {
        "people": people,
        "holder_id": holder.pk,
        "card_id": card.pk,
        "request_id": request.pk,
        "approval_id": approval.pk,
        "user_id": filer.pk,
        "pool_id": site.pk,
        "station_id": station.pk,
        "wave_id": wave.pk,
        "import_id": import_id,
    }


def axe(checked: Checked, where: str, keep: bool, shot: str = "") -> list[str]:
    """axe-core's serious and critical violations on what is shown (none: an empty list)."""
    try:
        checked.check(shot or where, keep=keep)
    except AssertionError as exc:
        return [f"{where}: {exc}"]
    return []


def settled(page: Any, selector: str, state: str) -> bool:
    """Whether ``selector`` reaches ``state`` once the key's events are handled."""
    from playwright.sync_api import TimeoutError as Timeout

    try:
        page.wait_for_selector(selector, state=state, timeout=5000)
    except Timeout:
        return False
    return True


def walk_with_the_keyboard(page: Any, where: str, dialogs: set[str] | None = None) -> list[str]:
    """Tab through the page: what Tab never reaches, what it reaches without a visible focus, the
    forms that cannot be sent with Enter, and the dialogs that misbehave. An empty list is a pass."""
    problems: list[str] = []
    expected = {item["kb"]: item["what"] for item in page.evaluate(FOCUSABLE)}
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.evaluate(FOCUS_LOG)
    reached: set[str] = set()
    presses = 0
    while presses < 2 * len(expected) + 4 and not reached >= set(expected):
        for _ in range(len(expected) - len(reached) + 1):  # a round of presses, then the log
            page.keyboard.press("Tab")
            presses += 1
        for focused in page.evaluate("() => window.kbLog.splice(0)"):
            if focused is None:
                continue
            if focused["kb"] is None:
                problems.append(f"{where}: Tab reaches an element not meant to: {focused['what']}")
                continue
            reached.add(focused["kb"])
            if not focused["drawn"]:
                problems.append(f"{where}: no visible focus on {focused['what']}")
    problems += [f"{where}: Tab never reaches {expected[kb]}" for kb in set(expected) - reached]
    problems += [
        f"{where}: no submit button in {f[:60]}" for f in page.evaluate(FORMS_WITHOUT_SUBMIT)
    ]
    openers = page.locator("[data-open-dialog]")
    for n in range(openers.count()):
        opener = openers.nth(n)
        if not opener.is_visible():
            continue
        name = opener.get_attribute("data-open-dialog")
        if dialogs is not None:
            dialogs.add(name)
        opener.focus()
        url = page.url
        page.keyboard.press("Enter")
        if not settled(page, f"dialog#{name}[open]", "attached"):
            problems.append(f"{where}: Enter does not open {name}")
            continue
        focused = page.evaluate(FOCUSED)
        inside = page.evaluate(CONTROLS_IN, name)
        for _ in range(inside + 1):  # around once; past the last, to the browser's own controls
            if focused is not None and focused["dialog"] != name:
                problems.append(f"{where}: focus leaves the open dialog {name}")
                break
            page.keyboard.press("Tab")
            focused = page.evaluate(FOCUSED)
        page.keyboard.press("Escape")
        if page.url != url:
            problems.append(f"{where}: the dialog {name} was sent")
        if not settled(page, f"dialog#{name}[open]", "detached"):
            problems.append(f"{where}: Escape does not close {name}")
        back = page.evaluate("() => document.activeElement.dataset.openDialog || null")
        if back != name:
            problems.append(f"{where}: focus does not return to the button of {name}")
    return problems


def test_every_console_page_passes_axe_and_works_with_the_keyboard(
    live_server: Any,
    browser: Any,  # noqa: F811 - the fixture
    axe_source: str,  # noqa: F811 - the fixture
    objects: dict[str, Any],
) -> None:
    base = live_server.url
    problems: list[str] = []

    # The sign-in page, before anyone signs in.
    visitor = new_page(browser, axe_source)
    visitor.page.goto(f"{base}{reverse('console:login')}")
    problems += axe(visitor, "login", keep=False)
    problems += walk_with_the_keyboard(visitor.page, "login")
    visitor.page.context.close()

    checked: dict[Role, Checked] = {}
    for role, user in objects["people"].items():
        checked[role] = new_page(browser, axe_source)
        sign_in(checked[role].page, base, user.username)
        checked[role].page.wait_for_url(f"{base}/console/")

    walked: set[str] = set()
    dialogs: set[str] = set()
    shapes: set[str] = set()
    headers: set[Role] = set()  # each role's header (its sections) checked once
    for name, roles, params, answers_get in PAGES:
        if not answers_get:
            continue  # an action: its answer is a redirect to a page walked here
        url = base + reverse(f"console:{name}", kwargs={p: objects[p] for p in params})
        for role in (r for r in PEOPLE if r in roles):
            page = checked[role].page
            if name in DOWNLOADS:
                response = page.request.get(url)
                assert response.status == 200, (name, role, response.status)
                assert "text/html" not in response.headers["content-type"], name
                walked.add(name)
                break  # a file: nothing to look at
            response = page.goto(url)
            assert response is not None and response.status == 200, (name, role, url)
            page.wait_for_load_state("load")
            keep = name in SHOWN and name not in walked
            shape = page.evaluate(SHAPE)  # another role's same markup: axe would say the same
            if keep or shape not in shapes or role not in headers:
                problems += axe(checked[role], f"{name} as {role.value}", keep=keep, shot=name)
                shapes.add(shape)
                headers.add(role)
            problems += walk_with_the_keyboard(page, f"{name} as {role.value}", dialogs)
            walked.add(name)

    # Pages that answer a form, sent with the keyboard alone (Enter in a field sends its form).
    for role, start, steps, shown, where in ANSWERS:
        page = checked[role].page
        page.goto(base + reverse(start))
        for selector, keys in steps:
            if keys.startswith("file:"):
                page.set_input_files(selector, files=[BATCH_FILE])
                continue
            page.focus(selector)
            for key in keys.split("|"):
                if key in KEYS:
                    page.keyboard.press(key)
                else:
                    page.keyboard.type(key)
        page.wait_for_selector(shown)
        problems += axe(checked[role], where, keep=False)
        problems += walk_with_the_keyboard(page, where, dialogs)

    page = checked[Role.AUDITOR].page
    missing = page.goto(f"{base}/console/cards/{'0' * 8}-0000-0000-0000-{'0' * 12}/")
    assert missing is not None and missing.status == 404
    problems += walk_with_the_keyboard(page, "not found")
    problems += axe(checked[Role.AUDITOR], "not found", keep=False)

    assert walked == {name for name, _, _, get in PAGES if get}  # every page opened by someone
    assert {"dlg-suspend", "dlg-queue", "dlg-publish", "dlg-approve-launch"} <= dialogs
    assert problems == [], "\n".join(p[:300] for p in problems)
