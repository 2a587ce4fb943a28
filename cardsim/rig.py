"""Running the simulator for a demo, a benchmark or a test: free TCP ports, a bounded wait, a
``python -m cardsim`` process driven through its control socket, and a private pcscd.

One copy for ``manage.py demo``, the benchmarks and the pcscd tests. Standard library only (plus
the simulator's control client): no Django, no pyscard.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from cardsim.control import ControlClient

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
KEY_POOL = REPO / "cardsim" / "fixtures" / "test-keypool.pem"
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
PCSCD_PID_FILE = PCSCD_SOCKET.with_name("pcscd.pid")
DEFAULT_VPCD_PORT = 35963
LOCALHOST = "127.0.0.1"


class RigError(RuntimeError):
    """A process of the rig did not start or stopped; the message says which and where to look."""


class RigTimeout(RigError, TimeoutError):
    """A bounded wait ran out."""


# --- ports and waits ----------------------------------------------------------------------------


def free_port(*, pair: bool = False, host: str = LOCALHOST, attempts: int = 50) -> int:
    """A TCP port nothing listens on (``pair``: that port and the next one, as vpcd needs)."""
    for _ in range(attempts):
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if not pair:
            return port
        if port >= 65535:
            continue
        with socket.socket() as second:
            try:
                second.bind((host, port + 1))
            except OSError:
                continue
        return port
    raise RigError(f"no free TCP port on {host}")


def port_listening(port: int, host: str = LOCALHOST) -> bool:
    """Something accepts TCP connections on the port."""
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, port)) == 0


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float = 15.0,
    what: str = "condition",
    interval: float = 0.02,
) -> T:
    """Poll ``predicate`` until it returns something truthy and return it; RigTimeout naming
    ``what`` after ``timeout`` seconds. An exception raised by the predicate ends the wait."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise RigTimeout(f"timed out waiting for {what} ({timeout:g} s)")
        time.sleep(interval)


# --- processes ----------------------------------------------------------------------------------


def terminate(proc: subprocess.Popen[Any], timeout: float = 10.0) -> int:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; waits for the child and returns its code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def _process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _unix_socket_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def pcscd_alive(socket_path: Path = PCSCD_SOCKET, pid_file: Path = PCSCD_PID_FILE) -> bool:
    """A pcscd runs (its pid file names a live ``pcscd``) and accepts on its socket.

    The socket file alone proves nothing: a killed daemon leaves it behind.
    """
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return _process_name(pid) == "pcscd" and _unix_socket_answers(socket_path)


# --- pcscd --------------------------------------------------------------------------------------


@dataclass
class Pcscd:
    """Where pyscard finds a pcscd and where the simulator plugs its card (vpcd port and +1)."""

    label: str
    port: int = DEFAULT_VPCD_PORT
    socket_path: Path | None = None
    """Set for a private daemon: its clients need ``PCSCLITE_CSOCK_NAME``."""
    proc: subprocess.Popen[bytes] | None = None

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a child process: the repository importable, this daemon's socket."""
        env = dict(os.environ if base is None else base, PYTHONPATH=str(REPO))
        if self.socket_path is not None:
            env["PCSCLITE_CSOCK_NAME"] = str(self.socket_path)
        return env

    def stop(self) -> None:
        """Stop the daemon if this rig started it."""
        if self.proc is not None:
            terminate(self.proc)


def private_pcscd_unusable() -> str:
    """Why no private pcscd can be started here ("" when one can)."""
    if not VPCD_DRIVER.exists() or shutil.which("pcscd") is None:
        return "pcscd or vsmartcard-vpcd is not installed"
    if os.geteuid() != 0:
        return "not root (a private pcscd needs its own mount namespace)"
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    return ""


def private_pcscd(work: Path, *, timeout: float = 15.0) -> Pcscd:
    """A pcscd in its own mount namespace (root), its socket and logs in ``work`` (emptied first),
    vpcd on two free ports: it never meets the machine's pcscd nor another rig's."""
    port = free_port(pair=True)
    conf = work / "reader.conf.d"
    run_dir = work / "run"
    shutil.rmtree(work, ignore_errors=True)
    conf.mkdir(parents=True)
    run_dir.mkdir()
    (conf / "vpcd").write_text(
        f'FRIENDLYNAME "Virtual PCD"\nDEVICENAME   /dev/null:0x{port:04X}\n'
        f"LIBPATH      {VPCD_DRIVER}\nCHANNELID    0x{port:04X}\n"
    )
    sock = run_dir / "pcscd.comm"
    # /run/pcscd exists only once a system pcscd ran: the mount point is made if missing
    script = (
        f'mkdir -p /run/pcscd && mount --bind "{run_dir}" /run/pcscd'
        f' && exec pcscd --foreground --config "{conf}"'
    )
    with (work / "pcscd.log").open("wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, our own paths
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],  # noqa: S607
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: sock.exists() or proc.poll() is not None,
            timeout=timeout,
            what="the private pcscd",
        )
        if proc.poll() is not None:
            raise RigError(f"the private pcscd did not start (see {work / 'pcscd.log'})")
    except BaseException:
        terminate(proc)
        raise
    return Pcscd(f"private pcscd, vpcd ports {port}/{port + 1}", port, sock, proc)


# --- the simulator process ----------------------------------------------------------------------


class Simulator:
    """One ``python -m cardsim`` process on a pcscd's vpcd slots, driven by its control socket.

    ``start()`` returns once vpcd took the card (and every extra readiness check holds); on any
    failure the process is killed: a simulator left running would hold the vpcd ports.
    """

    start_timeout = 15.0
    """Seconds each start-up stage may take."""

    def __init__(
        self,
        workdir: Path,
        state: Path,
        *,
        product: str = "cps4",
        pcscd: Pcscd | None = None,
        key_pool: Path | None = None,
        key_delay_ms: float = 0.0,
        debug: bool = False,
        detach: bool = False,
    ) -> None:
        self.workdir = workdir
        self.state = state
        self.product = product
        self.pcscd = pcscd or Pcscd("machine pcscd")
        self.key_pool = key_pool
        self.key_delay_ms = key_delay_ms
        self.debug = debug
        self.detach = detach  # a new session: the process may outlive its parent (a kept rig)
        self.control_path = workdir / "cardsim.sock"
        self.control = ControlClient(self.control_path)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def argv(self) -> list[str]:
        """The command line of the simulator process."""
        argv = [sys.executable, "-m", "cardsim", "--product", self.product]
        argv += ["--state", str(self.state), "--control", str(self.control_path)]
        argv += ["--port", str(self.pcscd.port), "--contactless-port", str(self.pcscd.port + 1)]
        if self.key_pool is not None:
            argv += ["--key-pool", str(self.key_pool)]
        if self.key_delay_ms:
            argv += ["--key-delay-ms", f"{self.key_delay_ms:g}"]
        if self.debug:
            argv.append("--debug")
        return argv

    def start(self, ready: Sequence[tuple[str, Callable[[], bool]]] = ()) -> None:
        """Start; wait for the control socket, vpcd's connection, then each ``(what, check)``."""
        if self.proc is not None:
            raise RigError("this simulator is already running")
        stages = [
            ("cardsim control socket", self._control_answers),
            ("vpcd connection", lambda: bool(self.status()["contact_connected"])),
            *ready,
        ]
        try:
            self._spawn()
            for what, check in stages:
                wait_until(self._alive_and(check), timeout=self.start_timeout, what=what)
        except BaseException:
            self.kill()
            raise

    def _spawn(self) -> None:
        self.control_path.unlink(missing_ok=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = (self.workdir / "cardsim.log").open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our interpreter, our module
            self.argv(),
            cwd=REPO,
            env=self.pcscd.env(),
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            start_new_session=self.detach,
        )

    def _control_answers(self) -> bool:
        """The control socket takes a request: its file shows once it is bound, a moment before
        it listens (a connection refused in between)."""
        try:
            self.status()
        except (FileNotFoundError, ConnectionRefusedError):
            return False
        return True

    def _alive_and(self, check: Callable[[], bool]) -> Callable[[], bool]:
        """``check``, failing fast when the process died instead of waiting out the timeout."""

        def alive_and_check() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise RigError(f"cardsim exited with {code}; see {self.workdir / 'cardsim.log'}")
            return check()

        return alive_and_check

    def call(self, op: str, **arguments: Any) -> dict[str, Any]:
        """One control request (``status``, ``remove``, ``insert``, ``fault``, ``clear_faults``)."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RigError(f"cardsim stopped; see {self.workdir / 'cardsim.log'}")
        return self.control.call(op, **arguments)

    def status(self) -> dict[str, Any]:
        """Control ``status``."""
        return self.call("status")

    def stop(self) -> int:
        """SIGTERM and wait (SIGKILL if it hangs); returns the exit code."""
        if self.proc is None:
            raise RigError("the simulator is not running")
        try:
            return terminate(self.proc)
        finally:
            self.kill()

    def kill(self) -> None:
        """Make sure the process is gone and reaped (idempotent)."""
        if self.proc is not None:
            terminate(self.proc, timeout=5)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
