"""The rig helpers shared by the demo, the benchmarks and the pcscd tests: ports, waits, processes."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cardsim import rig


def test_a_free_port_can_be_bound_and_a_pair_has_both_free() -> None:
    for pair in (False, True):
        port = rig.free_port(pair=pair)
        with socket.socket() as first, socket.socket() as second:
            first.bind((rig.LOCALHOST, port))
            if pair:
                second.bind((rig.LOCALHOST, port + 1))


def test_port_listening_tells_a_listener_from_a_free_port() -> None:
    with socket.socket() as server:
        server.bind((rig.LOCALHOST, 0))
        server.listen()
        port = server.getsockname()[1]
        assert rig.port_listening(port)
    assert not rig.port_listening(port)


def test_wait_until_returns_the_first_truthy_value() -> None:
    answers = iter([None, 0, "ready"])
    assert rig.wait_until(lambda: next(answers), interval=0) == "ready"


def test_wait_until_names_what_it_waited_for_when_time_runs_out() -> None:
    with pytest.raises(TimeoutError, match="timed out waiting for the moon"):
        rig.wait_until(lambda: False, timeout=0.05, what="the moon")


def test_terminate_kills_a_child_that_ignores_sigterm() -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('armed', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"armed\n"
    assert rig.terminate(child, timeout=0.2) == -9
    child.stdout.close()


def test_simulator_command_line_carries_its_options(tmp_path: Path) -> None:
    pcscd = rig.Pcscd("private", port=40000, socket_path=tmp_path / "pcscd.comm")
    sim = rig.Simulator(
        tmp_path, tmp_path / "card.json", pcscd=pcscd, key_pool=rig.KEY_POOL, key_delay_ms=5
    )
    argv = sim.argv()
    assert argv[:3] == [sys.executable, "-m", "cardsim"]
    options = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert options == {
        "--product": "cps4",
        "--state": str(tmp_path / "card.json"),
        "--control": str(tmp_path / "cardsim.sock"),
        "--port": "40000",
        "--contactless-port": "40001",
        "--key-pool": str(rig.KEY_POOL),
        "--key-delay-ms": "5",
    }
    assert pcscd.env({})["PCSCLITE_CSOCK_NAME"] == str(tmp_path / "pcscd.comm")
    with pytest.raises(rig.RigError, match="not running"):
        sim.stop()
