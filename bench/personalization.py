"""CPS4 personalization cost per card (DESIGN.md §10: ≤ 12 station↔server round trips, server CPU
≤ 50 ms per card), with cards per hour per station, measured in one run:

- in process: the station relay against the services (``ServiceApi``) and cardsim's in-process
  card; server CPU = thread CPU spent inside the service calls;
- in process through Django's whole request path (WSGI handler, middleware, token
  authentication, DRF views; no socket), with the token lookups remembered (api.auth_cache) and
  not, and the SQL statements per card, the claim's CPU and statements apart (``--profile
  FILE``: a cProfile of it; ``--only-in-process``: stop there);
- through pcscd (when root: a private pcscd in its own mount namespace): ``python -m cardsim``, a
  server process (by default gunicorn with one sync worker, as in production; ``--server
  runserver`` for Django's development server, ``--threaded-server`` with a thread and a new
  database connection per request) and one ``python -m
  personalization_station run`` process personalizing the cards one after another; server CPU =
  the server process's CPU time over the cards (HTTP, token authentication included).

``--front`` measures instead the production topology (scripts/topology.sh: nginx, the station on
mutual TLS, one gunicorn replica, Celery workers and beat; run it under the machine's pcscd lock):
the CPU of gunicorn and of the workers per card, with the token lookups remembered and not.

Each path runs without card delays (keys from the test key pool) and with a real chip's RSA key
generation time (``--key-delay-ms``, 3 s by default) on ``--delay-cards`` cards.

    python bench/personalization.py [--cards 10] [--delay-cards 2] [--key-delay-ms 3000]
        [--no-pcscd] [--server gunicorn|runserver] [--threaded-server]
        [--only-in-process [--profile FILE]] [--front]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support.database import bench_database  # noqa: E402
from cardsim.rig import (  # noqa: E402
    KEY_POOL,
    Pcscd,
    Simulator,
    free_port,
    private_pcscd,
    private_pcscd_unusable,
    terminate,
    wait_until,
)

READER = "Virtual PCD 00 00"
TARGET_TRIPS = 12
TARGET_CPU_MS = 50.0
THREADED_SERVER = False
SERVER = "gunicorn"


@dataclass
class Figures:
    label: str
    trips: list[int]
    apdus: list[int]
    cpu_ms: list[float]
    wall_s: list[float]
    note: str = ""

    def show(self) -> None:
        trips = statistics.mean(self.trips)
        cpu = statistics.median(self.cpu_ms)
        per_hour = 3600 / statistics.mean(self.wall_s)
        print(
            f"{self.label:<44} cards {len(self.trips):>3}  round trips {trips:5.1f} "
            f"(x{trips / TARGET_TRIPS:.2f} of target {TARGET_TRIPS})  APDUs "
            f"{statistics.mean(self.apdus):5.0f}  server CPU {cpu:6.1f} ms "
            f"(x{cpu / TARGET_CPU_MS:.2f} of target {TARGET_CPU_MS:.0f})  "
            f"{per_hour:6.0f} cards/h/station" + (f"  {self.note}" if self.note else "")
        )


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    wait_until(predicate, timeout=timeout, what=what)


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and its live children (gunicorn: the master and its worker; a
    Celery worker: its pool), to the nanosecond: the scheduler's run time of every thread
    (/proc/PID/task/TID/schedstat), not the 10 ms ticks of /proc/PID/stat."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            for task in (stat.parent / "task").glob("*/schedstat"):
                try:
                    total += int(task.read_text().split()[0])
                except (OSError, IndexError, ValueError):
                    continue
    return total / 1e9


class Scene:
    """Product, keys, site, operator; a new blank card queued for a new holder on demand."""

    def __init__(self) -> None:
        from django.contrib.auth.models import Group, User

        from cms.callers import Caller
        from core.roles import Role
        from demo import setup

        self.setup = setup
        self.product = setup.products_and_keys()
        self.pool = setup.site("bench-site", "Benchmark site")
        user = User.objects.create_user(username="bench-operator", password=None)
        user.groups.set([Group.objects.get_or_create(name=Role.ISSUANCE_OPERATOR.value)[0]])
        self.operator = Caller.for_user(user)
        self.count = 0

    def queue(self, serial: str, uid: str) -> Any:
        from cms.identifiers import luhn_digit

        self.count += 1
        body = f"999{self.count:07d}"
        national_id = "8" + body + luhn_digit(body)
        self.setup.blank_card_register(
            product=self.product, pool=self.pool, chip_serial=serial, desfire_uid=uid
        )
        holder = self.setup.holder_demo(national_id)
        return self.setup.request_queued(
            holder=holder, product=self.product, pool=self.pool, operator=self.operator
        )


def in_process(scene: Scene, cards: int, key_delay_ms: float, label: str) -> Figures:
    from cardsim.card import Card, InProcessReader, KeyPool
    from demo.inprocess import ServiceApi
    from personalization_station.relay import CardLink, personalize

    station = scene.setup.station_enrolled(scene.pool, name=f"bench-inproc-{key_delay_ms:.0f}")

    class Timed(ServiceApi):
        cpu = 0.0

        def post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
            started = time.thread_time()
            try:
                return super().post(path, body)
            finally:
                self.cpu += time.thread_time() - started

    pool = KeyPool.from_pem_file(KEY_POOL)
    figures = Figures(label, [], [], [], [])
    for _ in range(cards):
        card = Card.blank("cps4", keygen=pool, key_delay_ms=key_delay_ms)
        assert card.desfire_chip is not None and card.contactless is not None
        scene.queue(card.serial.hex(), card.desfire_chip.state.uid.hex())
        api = Timed(station.station)
        link = CardLink(
            card.contact.atr,
            InProcessReader(card.contact),
            InProcessReader(card.contactless),
            "bench",
        )
        started = time.perf_counter()
        outcome = personalize(api, link)
        figures.wall_s.append(time.perf_counter() - started)
        assert outcome.state == "done", outcome.message
        figures.trips.append(outcome.round_trips)
        figures.apdus.append(outcome.apdus)
        figures.cpu_ms.append(api.cpu * 1000)
    return figures


def in_process_http(
    scene: Scene, cards: int, label: str, *, auth_cache: int = 30, profile: Path | None = None
) -> Figures:
    """The station relay through Django's whole request path in process (WSGI handler,
    middleware, token authentication with the station's certificate binding, DRF views), with
    no socket: the per-request overhead the services do not see. ``queries`` per card are
    printed; ``auth_cache``: API_AUTH_CACHE_SECONDS (one process: its memory is the shared
    cache); ``profile`` writes a cProfile of the server side."""
    import cProfile
    import json

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    from cardsim.card import Card, InProcessReader, KeyPool
    from personalization_station.relay import CardLink, personalize

    station = scene.setup.station_enrolled(scene.pool, name="bench-inproc-http")
    # Thread CPU as the profiler's clock: where the server's CPU goes, not its waits on PostgreSQL.
    profiler = cProfile.Profile(time.thread_time) if profile is not None else None

    class ViaDjango:
        cpu = 0.0
        queries = 0
        claim_cpu = 0.0
        claim_queries = 0

        def __init__(self, *, counting: bool = False) -> None:
            self.client = Client(HTTP_AUTHORIZATION=f"Token {station.token}")
            # Statements (transaction control included) are counted on a card of their own:
            # CaptureQueriesContext's debug cursor formats and stores every statement, CPU
            # the server does not spend, so the timed cards run without it.
            self.counting = counting

        def post(
            self, path: str, body: Mapping[str, Any] | None = None
        ) -> tuple[int, dict[str, Any]]:
            started = time.thread_time()
            if profiler is not None and not self.counting:
                profiler.enable()
            try:
                if self.counting:
                    with CaptureQueriesContext(connection) as seen:
                        answer = self._post(path, body)
                    self.queries += len(seen.captured_queries)
                    if path == "station/claim":
                        self.claim_queries += len(seen.captured_queries)
                else:
                    answer = self._post(path, body)
            finally:
                if profiler is not None and not self.counting:
                    profiler.disable()
                self.cpu += time.thread_time() - started
                if path == "station/claim":
                    self.claim_cpu += time.thread_time() - started
            return answer.status_code, (answer.json() if answer.content else {})

        def _post(self, path: str, body: Mapping[str, Any] | None) -> Any:
            return self.client.post(
                f"/api/v1/{path}", data=json.dumps(body or {}), content_type="application/json"
            )

    pool = KeyPool.from_pem_file(KEY_POOL)
    figures = Figures(label, [], [], [], [])
    queries: list[int] = []
    claims: list[float] = []
    claim_queries = 0
    # No certificate binding here (no front to verify one): the token alone, as in development.
    with override_settings(STATION_CERTIFICATE_BINDING=False, API_AUTH_CACHE_SECONDS=auth_cache):
        for n in range(cards + 1):  # the last card counts the statements, untimed
            card = Card.blank("cps4", keygen=pool)
            assert card.desfire_chip is not None and card.contactless is not None
            scene.queue(card.serial.hex(), card.desfire_chip.state.uid.hex())
            api = ViaDjango(counting=n == cards)
            link = CardLink(
                card.contact.atr,
                InProcessReader(card.contact),
                InProcessReader(card.contactless),
                "bench",
            )
            started = time.perf_counter()
            outcome = personalize(api, link)
            wall = time.perf_counter() - started
            assert outcome.state == "done", outcome.message
            if api.counting:
                queries.append(api.queries)
                claim_queries = api.claim_queries
                continue
            figures.wall_s.append(wall)
            figures.trips.append(outcome.round_trips)
            figures.apdus.append(outcome.apdus)
            figures.cpu_ms.append(api.cpu * 1000)
            claims.append(api.claim_cpu * 1000)
    figures.note = (
        f"SQL statements per card {statistics.median(queries):.0f}"
        f" (the claim: {statistics.median(claims):.1f} ms, {claim_queries} statements)"
    )
    if profiler is not None and profile is not None:
        profiler.dump_stats(str(profile))
    return figures


def through_pcscd(scene: Scene, cards: int, key_delay_ms: float, label: str, tmp: Path) -> Figures:
    from django.db import connections

    from cardsim.card import Card, blank_state, save_state
    from cms.choices import CardStatus
    from cms.models import Card as CardRow
    from personalization_station import credentials

    work = tmp / f"pcscd-{key_delay_ms:.0f}"
    procs: list[subprocess.Popen[Any]] = []
    figures = Figures(label, [], [], [], [])
    pcscd: Pcscd | None = None
    sim: Simulator | None = None
    try:
        pcscd = private_pcscd(work)
        env = pcscd.env()
        first = work / "card-0.json"
        save_state(first, blank_state("cps4"))
        sim = Simulator(work, first, pcscd=pcscd, key_pool=KEY_POOL, key_delay_ms=key_delay_ms)
        sim.start_timeout = 60.0
        sim.start()
        sim.call("remove")
        server_port = free_port()
        url = f"http://127.0.0.1:{server_port}"
        connections.close_all()
        # The production server by default: one gunicorn sync worker, which keeps its database
        # connection (CONN_MAX_AGE). --server runserver measures Django's development server
        # (one thread; --threaded-server: a thread and a new connection per request).
        if SERVER == "gunicorn":
            command = [
                sys.executable, "-m", "gunicorn", "config.wsgi:application",
                "--bind", f"127.0.0.1:{server_port}", "--workers", "1", "--worker-class", "sync",
            ]  # fmt: skip
        else:
            threading = [] if THREADED_SERVER else ["--nothreading"]
            command = [
                sys.executable, "manage.py", "runserver", f"127.0.0.1:{server_port}",
                "--noreload", *threading,
            ]  # fmt: skip
        server = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(server)

        def up() -> bool:
            try:
                urllib.request.urlopen(f"{url}/api/v1/me", timeout=2)
            except urllib.error.HTTPError:
                return True
            except OSError:
                return False
            return True

        _wait(up, "the server")
        enrolled = scene.setup.station_enrolled(scene.pool, name=f"bench-pcscd-{key_delay_ms:.0f}")
        credential = work / "station" / "credential.json"
        credentials.save(
            credentials.Credential(url, str(enrolled.station.pk), enrolled.token), credential
        )
        log = (work / "station.log").open("w+")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "personalization_station",
                    "--credential",
                    str(credential),
                    "run",
                    "--reader",
                    READER,
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        for n in range(1, cards + 2):  # the first card warms the server up (key unlock)
            path = work / f"card-{n}.json"
            save_state(path, blank_state("cps4"))
            virtual = Card.open(path)
            assert virtual.desfire_chip is not None
            serial = virtual.serial.hex().upper()
            scene.queue(serial, virtual.desfire_chip.state.uid.hex())
            connections.close_all()
            cpu_before = _cpu_seconds(server.pid)
            started = time.perf_counter()
            sim.call("insert", state=str(path))

            def issued(chip_serial: str = serial) -> bool:
                done = CardRow.objects.filter(
                    chip_serial=chip_serial, status=CardStatus.ISSUED
                ).exists()
                connections.close_all()
                return done

            try:
                _wait(issued, f"card {serial}", timeout=120 + 10 * key_delay_ms / 1000)
            except TimeoutError:
                print(Path(log.name).read_text()[-2000:])
                raise
            wall, cpu = time.perf_counter() - started, _cpu_seconds(server.pid) - cpu_before
            log.flush()
            line = f"card {serial}: done"
            _wait(lambda: line in Path(log.name).read_text(), "the station's report")  # noqa: B023
            found = re.search(
                rf"card {serial}: done \((\d+) round trips, (\d+) APDUs\)",
                Path(log.name).read_text(),
            )
            assert found is not None
            if n == 1:
                continue
            figures.wall_s.append(wall)
            figures.cpu_ms.append(cpu * 1000)
            figures.trips.append(int(found.group(1)))
            figures.apdus.append(int(found.group(2)))
        return figures
    finally:
        for proc in reversed(procs):
            terminate(proc)
        if sim is not None:
            sim.kill()
        if pcscd is not None:
            pcscd.stop()


FRONT_SCENE = """
import json
from django.contrib.auth.models import Group, User
from cms.callers import Caller
from cms.identifiers import luhn_digit
from cms.models import SitePool
from cms.personalization.stations import station_create
from demo import setup

product = setup.products_and_keys()
pool = SitePool.objects.filter(code="bench-front").first() or setup.site("bench-front")
operator, _ = User.objects.get_or_create(username="bench-front-operator")
operator.groups.add(Group.objects.get_or_create(name="issuance_operator")[0])
for n, (serial, uid) in enumerate(CARDS):
    body = f"998{n:07d}"
    setup.blank_card_register(product=product, pool=pool, chip_serial=serial, desfire_uid=uid)
    setup.request_queued(
        holder=setup.holder_demo("8" + body + luhn_digit(body)), product=product, pool=pool,
        operator=Caller.for_user(operator),
    )
code = station_create(site_code=pool.code, name=f"bench-front-{len(CARDS)}", caller=setup.SYSTEM)
print(json.dumps(code.code))
"""


@dataclass
class FrontFigures:
    label: str
    web_ms: list[float]
    workers_ms: list[float]
    nginx_ms: list[float]
    trips: list[int]
    wall_s: list[float]
    django_ms: list[float]
    gunicorn_own_ms: list[float]

    def show(self) -> None:
        web = statistics.median(self.web_ms)
        server = statistics.median(
            [w + c for w, c in zip(self.web_ms, self.workers_ms, strict=True)]
        )
        print(
            f"{self.label:<44} cards {len(self.trips):>3}  round trips "
            f"{statistics.mean(self.trips):5.1f}  server CPU {server:6.1f} ms "
            f"(x{server / TARGET_CPU_MS:.2f} of target {TARGET_CPU_MS:.0f}): gunicorn {web:5.1f}, "
            f"Celery {statistics.median(self.workers_ms):5.1f}; nginx "
            f"{statistics.median(self.nginx_ms):4.1f} ms  "
            f"{3600 / statistics.mean(self.wall_s):6.0f} cards/h/station\n"
            f"{'':<44} of gunicorn's: Django {statistics.median(self.django_ms):5.1f} ms, "
            f"gunicorn itself {statistics.median(self.gunicorn_own_ms):4.1f} ms (reading, "
            f"parsing and writing the requests, its main loop)"
        )


def _cpu_log(directory: Path) -> list[tuple[float, float, float]]:
    """deploy/gunicorn.conf.py's GUNICORN_CPU_LOG_DIR lines, one per request (one worker):
    (thread CPU over the request, of the application alone, the main loop's so far), in ms."""
    rows = []
    for path in sorted(directory.glob("cpu-*.tsv")):
        for line in path.read_text().splitlines():
            _path, request, application, main = line.split("\t")
            rows.append((float(request), float(application), float(main)))
    return rows


def through_front(
    cards: int, label: str, tmp: Path, *, auth_cache: int, profile: Path | None = None
) -> FrontFigures:
    """The production topology (scripts/topology.sh: nginx on TLS, the station on mutual TLS, one
    gunicorn replica, Celery workers for default and signing, beat, Redis, PostgreSQL) and a
    station process on a private pcscd. Server CPU per card = CPU time of the gunicorn replica
    and the Celery workers and beat (every thread of the master and its children, from /proc)
    from the card's insertion until it is issued and the workers are idle again, less their
    idle rate (polling Redis, beat's ticks) measured just before over that time; nginx's is
    shown apart (TLS, mutual TLS, proxying). gunicorn's CPU is split with its per-request CPU
    log (deploy/gunicorn.conf.py): the application (Django) and gunicorn itself."""
    from cardsim.card import Card, blank_state, save_state
    from ops.topology import Topology

    work = tmp / f"front-{auth_cache}"
    cpu_log = work / "gunicorn-cpu"
    cpu_log.mkdir(parents=True)
    topology = Topology(
        work / "topology",
        knobs={
            "TOPOLOGY_WEB_REPLICAS": "1",
            "TOPOLOGY_AUTH_CACHE": str(auth_cache),
            "GUNICORN_CPU_LOG_DIR": str(cpu_log),
            **({"GUNICORN_PROFILE_FILE": str(profile.resolve())} if profile is not None else {}),
        },
    )
    figures = FrontFigures(label, [], [], [], [], [], [], [])
    pcscd: Pcscd | None = None
    sim: Simulator | None = None
    procs: list[subprocess.Popen[Any]] = []
    try:
        topology.up()
        run = topology.directory / "run"
        web = [
            run / f"web-{port}.pid"
            for port in topology.settings["TOPOLOGY_WEB_PORTS"].strip('"').split()
        ]
        workers = [run / "worker-default.pid", run / "worker-signing.pid", run / "beat.pid"]

        def cpu(files: list[Path]) -> float:
            return sum(_cpu_seconds(int(f.read_text().strip())) for f in files)

        pcscd = private_pcscd(work / "pcscd")
        env = pcscd.env()
        states = []
        for n in range(cards + 1):  # the first card warms the server up (key unlock)
            path = work / f"card-{n}.json"
            save_state(path, blank_state("cps4"))
            virtual = Card.open(path)
            assert virtual.desfire_chip is not None
            states.append(
                (path, virtual.serial.hex().upper(), virtual.desfire_chip.state.uid.hex())
            )
        code = topology.python(
            f"CARDS = {[(serial, uid) for _, serial, uid in states]!r}\n" + FRONT_SCENE,
            timeout=600,
        )
        sim = Simulator(work, states[0][0], pcscd=pcscd, key_pool=KEY_POOL, key_delay_ms=0)
        sim.start_timeout = 60.0
        sim.start()
        sim.call("remove")
        credential = work / "station" / "credential.json"
        credential.parent.mkdir(parents=True)
        station = [sys.executable, "-m", "personalization_station", "--credential",
                   str(credential), "--ca-file", topology.tls_ca]  # fmt: skip
        enrolled = subprocess.run(
            [*station, "enroll", "--cms", topology.https, "--code", code, "--certificate"],
            cwd=credential.parent, env=env, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
        assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
        log = (work / "station.log").open("w+")
        procs.append(
            subprocess.Popen(
                [*station, "run", "--reader", READER],
                cwd=credential.parent,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )

        def idle() -> tuple[float, float]:
            """Wait until the workers' CPU is back to its idle rate (the card's tasks done: under
            10 ms in a second); the idle rates (CPU s per s) of the web and the workers, which
            poll Redis and beat even with nothing to do, measured over the last second."""
            rates = (0.0, 0.0)
            for _ in range(60):
                last = cpu(web), cpu(workers)
                time.sleep(1.0)
                now = cpu(web), cpu(workers)
                rates = (now[0] - last[0], now[1] - last[1])
                if rates[1] < 0.010:
                    break
            return rates

        for n, (path, serial, _uid) in enumerate(states):
            background = idle()
            nginx_pid = int((run / "nginx.pid").read_text().strip())
            before = cpu(web), cpu(workers), _cpu_seconds(nginx_pid)
            requests_before = _cpu_log(cpu_log)
            started = time.perf_counter()
            sim.call("insert", state=str(path))

            def issued(chip_serial: str = serial) -> bool:
                status = topology.psql(
                    f"SELECT status FROM cms_card WHERE chip_serial = '{chip_serial}'"
                )
                return status == "ISSUED"

            try:
                _wait(issued, f"card {serial}", timeout=180)
            except TimeoutError:
                print(Path(log.name).read_text()[-2000:])
                raise
            wall = time.perf_counter() - started
            line = f"card {serial}: done"
            _wait(lambda: line in Path(log.name).read_text(), "the station's report")  # noqa: B023
            idle()
            after = cpu(web), cpu(workers), _cpu_seconds(nginx_pid)
            requests = _cpu_log(cpu_log)
            spent = time.perf_counter() - started
            found = re.search(
                rf"card {serial}: done \((\d+) round trips", Path(log.name).read_text()
            )
            assert found is not None
            if n == 0:
                continue
            # what the card cost: the CPU over its time less the idle rate over that time
            figures.web_ms.append((after[0] - before[0] - background[0] * spent) * 1000)
            figures.workers_ms.append((after[1] - before[1] - background[1] * spent) * 1000)
            figures.nginx_ms.append((after[2] - before[2]) * 1000)
            card = requests[len(requests_before) :]
            main_loop = card[-1][2] - (requests_before[-1][2] if requests_before else 0.0)
            figures.django_ms.append(sum(application for _, application, _ in card))
            figures.gunicorn_own_ms.append(
                sum(request - application for request, application, _ in card) + main_loop
            )
            figures.trips.append(int(found.group(1)))
            figures.wall_s.append(wall)
            sim.call("remove")
        return figures
    finally:
        for proc in reversed(procs):
            terminate(proc)
        if sim is not None:
            sim.kill()
        if pcscd is not None:
            pcscd.stop()
        topology.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=10, help="cards per path without delays")
    parser.add_argument("--delay-cards", type=int, default=2, help="cards with the key delay")
    parser.add_argument("--key-delay-ms", type=float, default=3000.0)
    parser.add_argument("--no-pcscd", action="store_true", help="only the in-process path")
    parser.add_argument(
        "--threaded-server",
        action="store_true",
        help="runserver with a thread (and a database connection) per request",
    )
    parser.add_argument(
        "--server",
        choices=("gunicorn", "runserver"),
        default="gunicorn",
        help="the server process measured on the pcscd path (default: gunicorn, one sync worker)",
    )
    parser.add_argument(
        "--front",
        action="store_true",
        help="only the production topology (nginx, mutual TLS, gunicorn, Celery; its fixed "
        "ports: run it under the machine's pcscd lock), token lookups cached and not",
    )
    parser.add_argument(
        "--front-auth-cache", type=int, action="append", default=None, metavar="SECONDS",
        help="--front: only this API_AUTH_CACHE_SECONDS row (repeatable; default: 30 and 0)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", type=Path, default=None,
        help="write a cProfile of the Django request path row (with --front: of gunicorn's"
        " application) to this file",
    )  # fmt: skip
    parser.add_argument(
        "--only-in-process", action="store_true", help="the two in-process rows only (profiling)"
    )
    args = parser.parse_args()
    global THREADED_SERVER, SERVER
    THREADED_SERVER = args.threaded_server
    SERVER = args.server

    tmp = Path(tempfile.mkdtemp(prefix="perso-bench-"))
    if args.front:  # the topology's own settings: none of the in-process paths'
        if private_pcscd_unusable():
            raise SystemExit(f"--front needs a private pcscd: {private_pcscd_unusable()}")
        try:
            print(
                "CPS4 personalization through the production front (DESIGN.md §10: server CPU"
                " <= 50 ms/card; medians per card; gunicorn = 1 replica, Celery = default +"
                " signing workers + beat)",
                flush=True,
            )
            front_rows: tuple[tuple[str, int], ...] = (
                ("front: nginx mTLS + gunicorn + Celery", 30),
                ("  the same, token lookups not cached", 0),
            )
            if args.front_auth_cache:
                front_rows = tuple(
                    (f"front, API_AUTH_CACHE_SECONDS={seconds}", seconds)
                    for seconds in args.front_auth_cache
                )
            for label, seconds in front_rows:
                through_front(
                    args.cards, label, tmp, auth_cache=seconds, profile=args.profile
                ).show()
                sys.stdout.flush()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    os.environ.update(
        CMS_VAR_DIR=str(tmp),
        PKI_SOFTWARE_KEY_DIR=str(tmp / "pki-keys"),
        CARD_KEY_STORE_DIR=str(tmp / "card-keys"),
        PKI_KEY_PASSPHRASE=secrets.token_hex(16),
        CELERY_TASK_ALWAYS_EAGER="1",
    )
    unusable = "--no-pcscd" if args.no_pcscd else private_pcscd_unusable()
    usable = not unusable
    try:
        with bench_database("personalization"):
            import logging

            from django.core.management import call_command

            logging.getLogger("celery").setLevel(logging.WARNING)
            call_command("pki_init", stdout=io.StringIO())
            scene = Scene()
            in_process(scene, 1, 0, "warm-up")
            delayed = f"key generation {args.key_delay_ms / 1000:g} s"
            rows = [in_process(scene, args.cards, 0, "in process, no card delay")]
            in_process_http(scene, 1, "warm-up")
            rows.append(
                in_process_http(
                    scene, args.cards, "in process, Django request path", profile=args.profile
                )
            )
            rows.append(
                in_process_http(
                    scene, args.cards, "  the same, token lookups not cached", auth_cache=0
                )
            )
            if args.only_in_process:
                for row in rows:
                    row.show()
                return
            if args.delay_cards:
                rows.append(
                    in_process(scene, args.delay_cards, args.key_delay_ms, f"in process, {delayed}")
                )
            if usable:
                rows.append(through_pcscd(scene, args.cards, 0, "pcscd + station, no delay", tmp))
                if args.delay_cards:
                    rows.append(
                        through_pcscd(
                            scene,
                            args.delay_cards,
                            args.key_delay_ms,
                            f"pcscd + station, {delayed}",
                            tmp,
                        )
                    )
            print(
                "CPS4 personalization (DESIGN.md §10: round trips ≤ 12, server CPU ≤ 50 ms/card;"
                " CPU as the median per card; configured PKI hierarchy)"
            )
            for row in rows:
                row.show()
            if not usable:
                print(f"pcscd path skipped: {unusable}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
