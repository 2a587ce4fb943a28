"""``manage.py demo``: issue a CPS4 on a virtual card, end to end, on the embedded default.

Idempotent set-up (products, test card keys, a demo officer/operator, a site, an enrolled
station), then one new card per run: a blank virtual card registered in stock, a new demo holder,
an approved and queued request, personalization, activation. The card is personalized

- through pcscd when it is usable: a private pcscd (root: its own mount namespace and vpcd ports,
  so it never meets another pcscd) or the running one, a real ``python -m cardsim`` process, a
  temporary server and real ``python -m personalization_station enroll`` / ``run --once``
  processes;
- otherwise in process: the station's relay against the services (``ServiceApi``) and cardsim's
  in-process card.

``--keep-station`` (``make run``) leaves pcscd, the virtual card reader and a station process
running for the server at ``--base-url``; their process ids go to ``var/demo/rig.json``. While
that rig lives, a further ``manage.py demo`` inserts its new blank card there and lets that
station personalize it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from cardsim.rig import (
    DEFAULT_VPCD_PORT,
    VPCD_DRIVER,
    Pcscd,
    RigError,
    Simulator,
    free_port,
    pcscd_alive,
    private_pcscd,
    private_pcscd_unusable,
    terminate,
    wait_until,
)
from cms.callers import Caller
from cms.choices import CardStatus
from cms.identifiers import luhn_digit
from cms.models import Card, CardCertificate, CardRequest, Holder, Product, SitePool, Station
from cms.personalization.choices import StationStatus
from cms.personalization.stations import station_code_renew, station_create
from cms.services.cards import card_transition
from cms.services.holders import HolderData, holder_create
from cms.services.stock import pool_create
from core.errors import ApplicationError
from demo import setup
from demo.inprocess import ServiceApi

ROOT = Path(__file__).resolve().parents[3]
SITE_CODE = "demo-site"
STATION_NAME = "demo-station"
USERNAME = "demo-officer"
CONTACT_READER = "Virtual PCD 00 00"


class DemoError(Exception):
    """A step of the demo that could not be done; the message says what to do."""


def _say(line: str) -> None:
    print(line, flush=True)  # the demo's own report on the terminal


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


# --- the registry side --------------------------------------------------------------------------


@dataclass
class Actors:
    officer: Caller
    password: str | None  # only when the account was just created


def _actors() -> Actors:
    """The demo account (security officer and issuance operator), created once."""
    import secrets

    from django.contrib.auth.models import Group, User

    from core.actors import Actor
    from core.roles import Role
    from core.users import user_grant_role

    user = User.objects.filter(username=USERNAME).first()
    password = None
    if user is None:
        password = secrets.token_urlsafe(12)
        user = User.objects.create_user(username=USERNAME, password=password)
    for role in (Role.SECURITY_OFFICER, Role.ISSUANCE_OPERATOR):
        Group.objects.get_or_create(name=role.value)
        user_grant_role(user=user, role=role, actor=Actor.system("demo"))
    return Actors(officer=Caller.for_user(user), password=password)


def _site(officer: Caller) -> SitePool:
    found = SitePool.objects.filter(code=SITE_CODE).first()
    if found is not None:
        return found
    return pool_create(code=SITE_CODE, name="Demo personalization site", caller=officer)


def _station_code(pool: SitePool, officer: Caller) -> tuple[Station, str]:
    """A one-time code for the demo station (created on the first run, renewed afterwards).
    The embedded demo enrolls its own station as a system step, as ``manage.py station_enroll``
    does: a code asked for through the API waits for a second security officer."""
    officer = Caller.for_system(f"demo ({officer.actor.label})")
    existing = Station.objects.filter(site=pool, name=STATION_NAME).first()
    if existing is not None and existing.status != StationStatus.DISABLED:
        issued = station_code_renew(station_id=existing.pk, caller=officer)
    else:
        name = STATION_NAME if existing is None else f"{STATION_NAME}-{int(time.time())}"
        issued = station_create(site_code=pool.code, name=name, caller=officer)
    return issued.station, issued.code


def _new_holder(officer: Caller) -> Holder:
    """A demo holder with an RPPS number of the 999… demo range not used yet."""
    taken = Holder.objects.filter(national_id__startswith="8999").count()
    names = ("MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD", "DURAND", "LEROY")
    firsts = ("Claire", "Louis", "Camille", "Hugo", "Léa", "Jules", "Inès", "Paul")
    for n in range(taken + 1, taken + 1000):
        body = f"999{n:07d}"
        national_id = f"8{body}{luhn_digit(body)}"
        if Holder.objects.filter(national_id=national_id).exists():
            continue
        return holder_create(
            data=HolderData(
                national_id=national_id,
                last_name=names[n % len(names)],
                first_name=firsts[n % len(firsts)],
                profession="10",
                address_line1=f"{n % 180 + 1} rue de la Roquette",
                postal_code="75011",
                city="PARIS",
            ),
            caller=officer,
        )
    raise DemoError("no free demo national identifier")


@dataclass
class BlankCard:
    path: Path
    chip_serial: str
    desfire_uid: str


def _cards_dir() -> Path:
    return Path(settings.VAR_DIR) / "demo" / "cards"


def _blank_card(product: Product, pool: SitePool) -> BlankCard:
    """The oldest blank virtual card of the demo site whose state file we hold, or a new one."""
    from cardsim.card import Card as VirtualCard
    from cardsim.card import blank_state, load_state, save_state

    folder = _cards_dir()
    for card in Card.objects.filter(pool=pool, status=CardStatus.IN_STOCK).order_by(
        "created_at", "pk"
    ):
        path = folder / f"{card.chip_serial}.json"
        if path.exists():
            return BlankCard(path, card.chip_serial, card.desfire_uid or "")
        raise DemoError(
            f"card {card.chip_serial} is in the demo site's stock but its virtual card is gone "
            f"({path} is missing); it would be allocated first. Move it to another pool "
            "(POST /api/v1/stock/assign-pool) or start from a fresh var/ folder."
        )
    state = blank_state("cps4")
    virtual = VirtualCard(state)
    serial = virtual.serial.hex().upper()
    assert virtual.desfire_chip is not None
    uid = virtual.desfire_chip.state.uid.hex().upper()
    path = folder / f"{serial}.json"
    save_state(path, state)
    load_state(path)  # the file cardsim will open is readable
    setup.blank_card_register(product=product, pool=pool, chip_serial=serial, desfire_uid=uid)
    return BlankCard(path, serial, uid)


def _queue(product: Product, pool: SitePool, officer: Caller, blank: BlankCard) -> CardRequest:
    holder = _new_holder(officer)
    request = setup.request_queued(holder=holder, product=product, pool=pool, operator=officer)
    assert request.card is not None
    if request.card.chip_serial != blank.chip_serial:
        raise DemoError(
            f"the request was given card {request.card.chip_serial}, not the virtual card "
            f"{blank.chip_serial}: the demo site's stock holds other blank cards"
        )
    return request


# --- the card side: pcscd + processes, or in process ---------------------------------------------


def _pcscd_choice(work: Path) -> tuple[Pcscd | None, str]:
    """The pcscd to use, or None and why not: a private one (root), else the machine's."""
    why = private_pcscd_unusable()
    if not why:
        try:
            return private_pcscd(work), ""
        except RigError as exc:
            return None, str(exc)
    if not VPCD_DRIVER.exists() or shutil.which("pcscd") is None:
        return None, why
    if pcscd_alive():
        return Pcscd(f"running pcscd, vpcd port {DEFAULT_VPCD_PORT}", DEFAULT_VPCD_PORT), ""
    return None, f"no pcscd running and no private one: {why}"


def _cardsim(pcscd: Pcscd, card: Path, work: Path, *, detach: bool = False) -> Simulator:
    """``python -m cardsim`` on the pcscd's vpcd slots, holding the card kept in ``card``."""
    sim = Simulator(work, card, pcscd=pcscd, detach=detach)
    sim.start_timeout = 60.0
    sim.start()
    return sim


class TemporaryServer:
    """``manage.py runserver`` on a free port, for the station processes of one demo run."""

    def __init__(self, work: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, DJANGO_SETTINGS_MODULE=str(settings.SETTINGS_MODULE))
        connections.close_all()  # SQLite: hold no connection while the server writes
        self.proc = subprocess.Popen(  # noqa: S603 - our interpreter, our manage.py
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=(work / "server.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(self._up, timeout=60, what="the temporary server")
        except BaseException:
            terminate(self.proc)
            raise

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise DemoError("the temporary server stopped; see var/demo/run/server.log")
        try:
            urllib.request.urlopen(f"{self.url}/api/v1/me", timeout=2)  # noqa: S310 - http only
        except urllib.error.HTTPError:
            return True  # it answers (401)
        except OSError:
            return False
        return True


def _station_process(
    pcscd: Pcscd, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our interpreter, our module
        [sys.executable, "-m", "personalization_station", *args],
        cwd=ROOT,
        env=pcscd.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Rig:
    """The processes ``--keep-station`` leaves running, recorded in ``var/demo/rig.json``."""

    pids: dict[str, int] = field(default_factory=dict)
    control: str = ""
    label: str = ""

    @staticmethod
    def path() -> Path:
        return Path(settings.VAR_DIR) / "demo" / "rig.json"

    @classmethod
    def load(cls) -> Rig | None:
        try:
            data = json.loads(cls.path().read_text())
        except (OSError, ValueError):
            return None
        rig = cls(
            pids={k: int(v) for k, v in data["pids"].items()},
            control=str(data["control"]),
            label=str(data.get("label", "")),
        )
        if rig.pids and all(_alive(pid) for pid in rig.pids.values()):
            return rig
        rig.stop()  # a half-dead rig is of no use: stop what remains of it
        return None

    def save(self) -> None:
        self.path().write_text(
            json.dumps({"pids": self.pids, "control": self.control, "label": self.label})
        )

    def stop(self) -> None:
        for pid in self.pids.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        self.path().unlink(missing_ok=True)


@dataclass
class Outcome:
    path: str
    round_trips: int
    apdus: int


class Command(BaseCommand):
    help = "Issue a CPS4 to a new demo holder on a virtual card (set-up steps are idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--path",
            choices=("auto", "pcscd", "inprocess"),
            default="auto",
            help="pcscd + real processes, cardsim's in-process card, or pcscd when usable",
        )
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="where the server is (printed URLs; the kept station talks to it)",
        )
        parser.add_argument(
            "--keep-station",
            action="store_true",
            help="leave pcscd, the virtual card and a station running (make run)",
        )
        parser.add_argument(
            "--stop-station", action="store_true", help="stop what --keep-station left running"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["stop_station"]:
            rig = Rig.load()
            if rig is not None:
                rig.stop()
            Rig.path().unlink(missing_ok=True)
            _say("demo station stopped" if rig else "no demo station was running")
            return
        try:
            self._demo(options)
        except (DemoError, RigError, ApplicationError) as exc:
            raise CommandError(getattr(exc, "message", None) or str(exc)) from None

    def _demo(self, options: dict[str, Any]) -> None:
        from pki.models import CertificateAuthority

        if not settings.CELERY_TASK_ALWAYS_EAGER:
            _say("note: tasks are not eager here; a Celery worker must be running")
        if not CertificateAuthority.objects.exists():
            call_command("pki_init")
        product = setup.products_and_keys()
        actors = _actors()
        pool = _site(actors.officer)
        base = options["base_url"].rstrip("/")
        work = Path(settings.VAR_DIR) / "demo" / "run"
        work.mkdir(parents=True, exist_ok=True)

        blank = _blank_card(product, pool)
        request = _queue(product, pool, actors.officer, blank)
        _say(f"holder {request.holder.national_id}: request {request.pk} queued with card "
             f"{blank.chip_serial}")  # fmt: skip

        rig = Rig.load()
        if rig is not None and options["path"] != "inprocess":
            outcome = self._through_rig(rig, blank, request)
        elif options["path"] == "inprocess":
            outcome = self._in_process(pool, blank, "asked for (--path inprocess)")
        else:
            pcscd, why = _pcscd_choice(work / "pcscd")
            if pcscd is None and options["path"] == "pcscd":
                raise DemoError(f"pcscd path asked for but not usable: {why}")
            if pcscd is None:
                outcome = self._in_process(pool, blank, why, keep_station=options["keep_station"])
            else:
                outcome = self._through_pcscd(pcscd, pool, blank, actors, work, options)
        self._activate_and_report(request, actors, base, outcome)

    # --- the three ways a card gets personalized -----------------------------------------------

    def _in_process(
        self, pool: SitePool, blank: BlankCard, why: str, *, keep_station: bool = False
    ) -> Outcome:
        from cardsim.card import Card as VirtualCard
        from cardsim.card import InProcessReader
        from personalization_station.relay import CardLink, personalize

        _say(f"path: in process (cardsim's in-process card, the station relay on the services); "
             f"pcscd not used: {why}")  # fmt: skip
        enrolled = setup.station_enrolled(pool, name=f"{STATION_NAME}-inprocess")
        virtual = VirtualCard.open(blank.path)

        link = CardLink(
            atr=virtual.contact.atr,
            contact=InProcessReader(virtual.contact),
            contactless=InProcessReader(virtual.contactless) if virtual.contactless else None,
            reader="in-process",
        )
        result = personalize(ServiceApi(enrolled.station), link, progress=lambda s: _say("  " + s))
        if result.state != "done":
            raise DemoError(f"personalization ended {result.state}: {result.message}")
        if keep_station:
            _say("no station kept running: pcscd is not usable here")
        return Outcome("in process", result.round_trips, result.apdus)

    def _through_pcscd(
        self,
        pcscd: Pcscd,
        pool: SitePool,
        blank: BlankCard,
        actors: Actors,
        work: Path,
        options: dict[str, Any],
    ) -> Outcome:
        _say(f"path: pcscd ({pcscd.label}), python -m cardsim, python -m personalization_station")
        keep = bool(options["keep_station"])
        credential = Path(settings.VAR_DIR) / "demo" / "station" / "credential.json"
        station, code = _station_code(pool, actors.officer)
        sim: Simulator | None = None
        server: TemporaryServer | None = None
        kept = False
        try:
            sim = _cardsim(pcscd, blank.path, work, detach=keep)
            server = TemporaryServer(work)
            enrolled = _station_process(
                pcscd, "--credential", str(credential), "enroll", "--cms", server.url,
                "--code", code, timeout=120,
            )  # fmt: skip
            if enrolled.returncode != 0:
                raise DemoError(f"station enrollment failed: {enrolled.stdout}{enrolled.stderr}")
            _say(f"station {station.name} ({station.pk}) enrolled by the station process")
            run = _station_process(
                pcscd, "--credential", str(credential), "run", "--cms", server.url,
                "--reader", CONTACT_READER, "--once",
            )  # fmt: skip
            for line in run.stdout.splitlines():
                _say("  " + line)
            found = re.search(r": done \((\d+) round trips, (\d+) APDUs\)", run.stdout)
            if run.returncode != 0 or found is None:
                raise DemoError(f"the station process failed:\n{run.stdout}{run.stderr}")
            outcome = Outcome("pcscd", int(found.group(1)), int(found.group(2)))
            if keep:
                sim.call("remove")
                self._keep(pcscd, sim, credential, options["base_url"], work)
                kept = True
            return outcome
        finally:
            if server is not None:
                terminate(server.proc)
            if not kept:
                if sim is not None:
                    sim.kill()
                pcscd.stop()

    def _keep(self, pcscd: Pcscd, sim: Simulator, credential: Path, base: str, work: Path) -> None:
        station = subprocess.Popen(  # noqa: S603 - our interpreter, our module
            [sys.executable, "-m", "personalization_station", "--credential", str(credential),
             "run", "--cms", base, "--reader", CONTACT_READER],
            cwd=ROOT,
            env=pcscd.env(),
            stdout=(work / "station.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        assert sim.proc is not None
        pids = {"cardsim": sim.proc.pid, "station": station.pid}
        if pcscd.proc is not None:
            pids["pcscd"] = pcscd.proc.pid
        Rig(pids=pids, control=str(sim.control_path), label=pcscd.label).save()
        _say(f"kept running: station (pid {station.pid}, log {work / 'station.log'}), "
             f"cardsim (pid {sim.proc.pid}, control {sim.control_path})"
             + (f", pcscd (pid {pcscd.proc.pid})" if pcscd.proc else ""))  # fmt: skip

    def _through_rig(self, rig: Rig, blank: BlankCard, request: CardRequest) -> Outcome:
        from cardsim.control import ControlClient
        from cms.models import PersonalizationSession

        _say(f"path: pcscd ({rig.label}), the running station (pid {rig.pids['station']}) "
             "and cardsim of make run")  # fmt: skip
        connections.close_all()
        ControlClient(Path(rig.control)).call("insert", state=str(blank.path))
        _say(f"card {blank.chip_serial} inserted into the kept virtual reader")

        def issued() -> bool:
            if not _alive(rig.pids["station"]):
                raise DemoError("the kept station stopped; see var/demo/run/station.log")
            request.refresh_from_db()
            assert request.card is not None
            request.card.refresh_from_db()
            connections.close_all()
            return bool(request.card.status == CardStatus.ISSUED)

        wait_until(
            issued,
            timeout=300,
            interval=0.05,
            what="the kept station to issue the card (is the server up?)",
        )
        session = PersonalizationSession.objects.filter(card=request.card, status="done").first()
        batches = session.batches if session else 0
        return Outcome("pcscd (kept station)", batches + 1, session.apdus if session else 0)

    # --- activation and the report --------------------------------------------------------------

    def _activate_and_report(
        self, request: CardRequest, actors: Actors, base: str, outcome: Outcome
    ) -> None:
        from django.contrib.auth.models import User

        from core.actors import Actor
        from core.tokens import api_token_create

        request.refresh_from_db()
        if request.card_id is None:
            raise DemoError(f"request {request.pk} holds no card")
        card = Card.objects.select_related("holder").get(pk=request.card_id)
        holder = card.holder
        assert holder is not None
        if card.status != CardStatus.ISSUED:
            raise DemoError(f"card {card.chip_serial} is {card.status} after personalization")
        card_transition(card_id=card.pk, transition="activate", caller=actors.officer)
        card.refresh_from_db()
        links = CardCertificate.objects.filter(card=card).select_related("certificate")
        account = User.objects.get(username=USERNAME)
        _, token = api_token_create(user=account, actor=Actor.system("demo"), label="demo")
        active = Card.objects.filter(pool__code=SITE_CODE, status=CardStatus.ACTIVE).count()
        lines = [
            "",
            f"CPS4 card {card.chip_serial} is {card.status} for holder "
            f"{holder.first_name} {holder.last_name} ({holder.national_id})",
            f"  path: {outcome.path}; {outcome.round_trips} station-server round trips, "
            f"{outcome.apdus} APDUs",
        ]
        for link in sorted(links, key=lambda x: x.slot):
            lines.append(
                f"  certificate {link.slot}: serial {int(link.certificate.serial):x} "
                f"({link.certificate.status})"
            )
        lines += [
            f"  virtual card state: {_cards_dir() / (card.chip_serial + '.json')}",
            f"demo cards ACTIVE at site {SITE_CODE}: {active} (each run issues one more)",
            "",
            "where to look (with the server running, e.g. make run):",
            f"  card         GET {base}/api/v1/cards/{card.pk}",
            f"  holder       GET {base}/api/v1/holders/{holder.pk}",
            f"  all cards    GET {base}/api/v1/cards",
            f"  PIN mailers  GET {base}/api/v1/pin-mailers",
            f"  console      {base}/console/   API docs {base}/api/docs/",
            f"account {USERNAME!r} (security officer, issuance operator)"
            + (f"; password: {actors.password} (shown once)" if actors.password else ""),
            f"  a token: curl -s -X POST {base}/api/v1/auth/token -H 'Content-Type: "
            f'application/json\' -d \'{{"username": "{USERNAME}", "password": "…"}}\'',
            f"  or this fresh one: curl -H 'Authorization: Token {token}' "
            f"{base}/api/v1/cards/{card.pk}",
        ]
        for line in lines:
            _say(line)
