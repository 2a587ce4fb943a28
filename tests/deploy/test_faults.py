"""Faults against the production topology (issue 12, item 4; DESIGN.md §11)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cardsim.pcscd_support import CONTACT_READER, Simulator, simulator_running
from tests.deploy.support import REPO, Topology, scene

pytestmark = [pytest.mark.integration, pytest.mark.pcscd, pytest.mark.slow]


@pytest.fixture
def slow_card(pcscd: object, tmp_path: Path) -> Iterator[Simulator]:
    simulator = Simulator(tmp_path / "card")
    simulator.key_delay_ms = 3000  # on-card key generation takes long: a window for the fault
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
    try:
        # the session is under way (past identification: keys are being generated on the card)
        _wait(
            lambda: (
                topology.psql(
                    "SELECT count(*) FROM cms_personalizationsession WHERE status = 'running' "
                    "AND seq >= 3"
                )
                == "1"
            ),
            "a running session",
        )
        topology.script("restart", "postgres")
        out, _ = station.communicate(timeout=300)
    finally:
        if station.poll() is None:
            station.kill()
            station.wait()
    assert station.returncode == 0, out
    status = topology.psql(
        "SELECT c.status FROM cms_card c JOIN cms_cardrequest r ON r.card_id = c.id "
        f"WHERE r.id = '{made['request']}'"
    )
    assert status == "ISSUED", out
