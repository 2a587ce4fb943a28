"""Faults against the production topology (issue 12, item 4; DESIGN.md §11)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cardsim.pcscd_support import CONTACT_READER, Simulator, simulator_running
from tests.deploy.conftest import VISIBILITY_TIMEOUT
from tests.deploy.support import REPO, Topology, scene

pytestmark = [pytest.mark.integration, pytest.mark.pcscd, pytest.mark.slow]


KEY_DELAY_MS = 3000


@pytest.fixture
def slow_card(pcscd: object, tmp_path: Path) -> Iterator[Simulator]:
    simulator = Simulator(tmp_path / "card")
    simulator.key_delay_ms = KEY_DELAY_MS  # on-card key generation takes long: the fault's window
    with simulator_running(simulator) as running:
        yield running


def _wait(predicate: object, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen")
        time.sleep(0.2)


def test_postgresql_restarted_during_a_personalization(
    topology: Topology, slow_card: Simulator, tmp_path: Path
) -> None:
    from cardsim.card import Card as VirtualCard
    from cardsim.card import load_state

    virtual = VirtualCard(load_state(slow_card.state))
    made = scene(
        topology,
        serial=virtual.serial.hex(),
        uid=virtual.desfire_chip.state.uid.hex(),
        national_id="810002813847",
        stations=["fault-pg"],
    )
    credential = tmp_path / "station" / "credential.json"
    credential.parent.mkdir()
    base = [sys.executable, "-m", "personalization_station", "--credential", str(credential),
            "--ca-file", topology.tls_ca]  # fmt: skip
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    enrolled = subprocess.run(
        [*base, "enroll", "--cms", topology.https, "--code", made["codes"][0], "--certificate"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
    station = subprocess.Popen(
        [*base, "run", "--reader", CONTACT_READER, "--once", "--retry-seconds", "120"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    said: list[str] = []  # the station's lines, read as they come (a failure shows them)
    reader = threading.Thread(target=lambda: said.extend(station.stdout or ()), daemon=True)
    reader.start()

    def running() -> bool:
        if station.poll() is not None:
            reader.join(5)
            raise AssertionError("the station stopped before its session ran:\n" + "".join(said))
        if any(line.startswith("remove the card") for line in list(said)):
            # interrupted before the fault (the card lost): with --once it then waits for a
            # removal no one makes, which the wait below would only see as a time-out
            raise AssertionError("the station's session ended before the fault:\n" + "".join(said))
        # batch 2 in flight: the card generating its keys (KEY_DELAY_MS each), a window of
        # seconds; the batches after it go by too fast for a poll to be sure to see them
        query = "SELECT count(*) FROM cms_personalizationsession WHERE status='running' AND seq=2"
        return topology.psql(query) == "1"

    def met_the_outage() -> bool:
        return station.poll() is not None or any("CMS unreachable" in line for line in list(said))

    try:
        try:
            _wait(running, "a session generating its keys")
        except AssertionError as exc:
            sessions = topology.psql(
                "SELECT status, seq, error FROM cms_personalizationsession ORDER BY started_at"
            )
            raise AssertionError(
                f"{exc}\nsessions:\n{sessions}\nstation:\n{''.join(said)}"
            ) from exc
        # PostgreSQL down until the station has met it (its answer to batch 2 refused with 503
        # and retried), then up again: the station rides it out and the card completes
        topology.script("stop", "postgres")
        try:
            _wait(met_the_outage, "the station meeting the database down", 90)
        finally:
            topology.script("start", "postgres")
        station.wait(timeout=300)
        reader.join(5)
        out = "".join(said)
    finally:
        if station.poll() is None:
            station.kill()
            station.wait()
    assert station.returncode == 0, out
    assert "CMS unreachable" in out, out  # the outage was met, not slept through
    status = topology.psql(
        "SELECT c.status FROM cms_card c JOIN cms_cardrequest r ON r.card_id = c.id "
        f"WHERE r.id = '{made['request']}'"
    )
    assert status == "ISSUED", out


REVOKE_MANY = """
import json
from cryptography.hazmat.primitives.asymmetric import rsa
from core.actors import Actor
from pki import services
from pki.domain.names import Holder
from pki.domain.reasons import RevocationReason
from pki.models import CertificateAuthority

actor = Actor.system("fault test")
ca = [c for c in CertificateAuthority.objects.all() if "cps_auth" in (c.profiles or [])][0]
public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
for n in range(COUNT):
    holder = Holder(national_id=f"82{n:010d}", surname="FAULT", given_name="CRL", title="Médecin",
                    card_serial=f"27{n:08d}", profession_code=10)
    cert = services.certificate_issue(authority=ca.short_name, profile="cps_auth", actor=actor,
                                      public_key=public, holder=holder)
    services.certificate_revoke(certificate_id=cert.pk, reason=RevocationReason.SUPERSEDED,
                                actor=actor)
print(json.dumps(ca.short_name))
"""

SEND_PUBLISH = """
import json
from pki.tasks import pki_publish_task
print(json.dumps(pki_publish_task.delay().id))
"""


def test_signing_worker_killed_during_a_crl_publication(topology: Topology) -> None:
    from cryptography import x509

    authority = topology.python("COUNT = 40\n" + REVOKE_MANY, timeout=600)
    ca_id = topology.psql(f"SELECT id FROM pki_certificateauthority WHERE short_name='{authority}'")
    numbers = f"SELECT number FROM pki_crlpublication WHERE authority_id={ca_id} ORDER BY id"
    before = topology.psql(numbers).split()
    log = topology.directory / "log" / "worker-signing.log"

    task = topology.python(SEND_PUBLISH)
    _wait(lambda: task in log.read_text(), "the signing worker receiving the publication")
    topology.script("kill9", "worker-signing")
    topology.script("start", "worker-signing")
    # the next run publishes (a task of beat's; sent here rather than waiting for the tick)
    topology.python(SEND_PUBLISH)
    _wait(lambda: len(topology.psql(numbers).split()) > len(before), "a new CRL", 180)

    after = [int(n) for n in topology.psql(numbers).split()]
    assert after == sorted(set(after)), after  # strictly increasing, none reused
    der = bytes.fromhex(
        topology.psql(
            f"SELECT encode(der, 'hex') FROM pki_crlpublication WHERE authority_id={ca_id} "
            "AND kind='full' ORDER BY number DESC LIMIT 1"
        )
    )
    listed = {entry.serial_number for entry in x509.load_der_x509_crl(der)}
    revoked = topology.psql(
        f"SELECT serial FROM pki_certificate WHERE issuer_id={ca_id} AND status='revoked'"
    ).split()
    assert {int(s) for s in revoked} <= listed  # no stored entry missing from the CRL


SEND_BATCH = """
import json
from core.tasks import audit_chain_check_task
print(json.dumps([audit_chain_check_task.delay().id for _ in range(COUNT)]))
"""

CHECKS_DONE = (
    "SELECT details->>'task' FROM core_auditevent WHERE action = 'audit.verify' ORDER BY seq"
)


def _broker_holds(topology: Topology) -> int:
    """Messages in the ``default`` queue plus those delivered and not yet acknowledged."""
    port = topology.settings["TOPOLOGY_REDIS_PORT"]
    total = 0
    for command in (["LLEN", "default"], ["HLEN", "unacked"]):
        done = subprocess.run(
            ["redis-cli", "-p", port, "-n", "0", *command],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        total += int(done.stdout.strip() or 0)
    return total


def test_broker_restarted_mid_batch(topology: Topology) -> None:
    """A batch of tasks on the default queue; Redis restarted while the worker is in the middle
    of it. Every task has its effect (one audit event naming it), none has it twice, and within
    the visibility timeout the topology sets for these tests (ADR 0020)."""
    count = 200
    before = set(topology.psql(CHECKS_DONE).split())
    sent = topology.python(f"COUNT = {count}\n" + SEND_BATCH)
    assert len(set(sent)) == count

    def done() -> list[str]:
        return [t for t in topology.psql(CHECKS_DONE).split() if t not in before]

    _wait(lambda: len(done()) >= 3, "the worker working through the batch")
    topology.script("restart", "redis")
    at_restart = len(done())
    assert at_restart < count, "the batch was over before the broker restarted: not mid-batch"
    _wait(lambda: len(done()) >= count, f"the rest of the batch ({at_restart}/{count} done)", 240)
    # a message left unacknowledged (in flight at the restart) goes back to the queue after the
    # visibility timeout and runs again: wait until the broker holds nothing for the worker
    _wait(lambda: _broker_holds(topology) == 0, "the broker emptied", 120 + 4 * VISIBILITY_TIMEOUT)
    recorded = done()
    assert sorted(recorded) == sorted(sent), "a task lost, run twice with effect, or unknown"
