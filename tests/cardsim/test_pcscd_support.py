"""The pcscd test support cleans up after itself: a simulator that fails to start is killed, and a
socket file left by a dead pcscd is not taken for a running daemon."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cardsim.pcscd_support import Simulator, pcscd_alive, simulator_running


class _SilentSimulator(Simulator):
    """A child that lives but never opens its control socket (a hung start-up)."""

    start_timeout = 0.3

    def _spawn(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(120)"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.spawned = self.proc


def _gone(proc: subprocess.Popen[bytes]) -> bool:
    """Reaped: the exit status was collected and no process answers to the pid any more."""
    if proc.returncode is None:
        return False
    try:
        os.kill(proc.pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_simulator_whose_start_times_out_is_killed(tmp_path: Path) -> None:
    simulator = _SilentSimulator(tmp_path)
    with pytest.raises(TimeoutError, match="control socket"):
        simulator.start()
    assert simulator.proc is None
    assert _gone(simulator.spawned)


def test_the_context_manager_reaps_after_a_failed_start(tmp_path: Path) -> None:
    simulator = _SilentSimulator(tmp_path)
    with pytest.raises(TimeoutError), simulator_running(simulator):
        pytest.fail("the block must not run when the start failed")
    assert _gone(simulator.spawned)


class _DyingSimulator(_SilentSimulator):
    def _spawn(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
        self.spawned = self.proc
        self.proc.wait()


def test_a_simulator_that_dies_at_start_fails_fast_with_its_exit_code(tmp_path: Path) -> None:
    simulator = _DyingSimulator(tmp_path)
    simulator.start_timeout = 60.0  # the failure must not wait for it
    with pytest.raises(RuntimeError, match="exited with 3"):
        simulator.start()
    assert _gone(simulator.spawned)


def test_a_stale_pcscd_socket_file_is_not_a_running_daemon(tmp_path: Path) -> None:
    sock, pid_file = tmp_path / "pcscd.comm", tmp_path / "pcscd.pid"
    sock.touch()  # what a killed pcscd leaves behind
    assert not pcscd_alive(sock, pid_file)  # no pid file
    pid_file.write_text(f"{os.getpid()}\n")  # a live process, but not pcscd
    assert not pcscd_alive(sock, pid_file)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pid_file.write_text(f"{dead.pid}\n")  # the daemon's pid, no longer running
    assert not pcscd_alive(sock, pid_file)


@pytest.mark.pcscd
def test_the_running_pcscd_is_recognised(pcscd: object) -> None:
    assert pcscd_alive()
