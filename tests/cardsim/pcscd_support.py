"""Real pcscd + vsmartcard-vpcd + ``python -m cardsim`` for tests (importable by other packages).

``pcscd_running()`` starts ``pcscd --foreground`` when no live daemon answers (a socket file left
by a dead pcscd does not count) and stops it only if it started it. ``Simulator`` runs one
``python -m cardsim`` process plugged into the vpcd slots and drives it through its control socket;
``simulator_running()`` starts one and always reaps it: a leaked simulator keeps the vpcd ports and
makes every later pcscd test time out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from cardsim.control import ControlClient

PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
PCSCD_PID_FILE = PCSCD_SOCKET.with_name("pcscd.pid")
REPO = Path(__file__).resolve().parents[2]
KEY_POOL = REPO / "cardsim" / "fixtures" / "test-keypool.pem"
CONTACT_READER = "Virtual PCD 00 00"
CONTACTLESS_READER = "Virtual PCD 00 01"
SCARD_W_RESET_CARD = 0x80100068


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll until ``predicate()`` holds; TimeoutError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what}")


def _process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _socket_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def pcscd_alive(socket_path: Path = PCSCD_SOCKET, pid_file: Path = PCSCD_PID_FILE) -> bool:
    """A pcscd process is running (its pid file names a live ``pcscd``) and accepts on its socket.

    The socket file alone proves nothing: a killed daemon leaves it behind.
    """
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return _process_name(pid) == "pcscd" and _socket_answers(socket_path)


def reap(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """Terminate a child (SIGTERM, then SIGKILL after ``timeout``) and wait for it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


@contextmanager
def pcscd_running() -> Iterator[None]:
    """A pcscd for the duration; started here only when no live one is running."""
    proc: subprocess.Popen[bytes] | None = None
    if not pcscd_alive():
        # pcscd itself removes the files of a dead predecessor (its pid no longer runs).
        proc = subprocess.Popen(
            ["pcscd", "--foreground"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for(lambda: _exited(proc) or pcscd_alive(), what="pcscd to listen")
            if proc.poll() is not None:
                raise RuntimeError(f"pcscd exited with {proc.returncode} at start")
        except BaseException:
            reap(proc)
            raise
    try:
        yield
    finally:
        if proc is not None:
            reap(proc)


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is not None


class Simulator:
    """One ``python -m cardsim`` process and its control channel."""

    start_timeout = 15.0
    """Seconds each start-up stage may take."""

    def __init__(self, workdir: Path, state: str = "card.json", product: str = "cps4") -> None:
        self.workdir = workdir
        self.state = workdir / state
        self.product = product
        self.control_path = workdir / "cardsim.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.control = ControlClient(self.control_path)
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        """Start and wait until both vpcd slots are plugged; on any failure the process is killed
        (a simulator left running would hold the vpcd ports)."""
        if self.proc is not None:
            raise RuntimeError("this simulator is already running")
        try:
            self._spawn()
            wait_for(
                self._ready(self.control_path.exists),
                what="cardsim control socket",
                timeout=self.start_timeout,
            )
            wait_for(
                self._ready(lambda: bool(self.status()["contact_connected"])),
                what="vpcd connection",
                timeout=self.start_timeout,
            )
            wait_for(
                self._ready(lambda: card_present(CONTACT_READER)),
                what="pcscd to see the card",
                timeout=self.start_timeout,
            )
        except BaseException:
            self.kill()
            raise

    def _ready(self, predicate: Callable[[], bool]) -> Callable[[], bool]:
        """``predicate``, failing fast when the process died instead of waiting out the timeout."""

        def check() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise RuntimeError(
                    f"cardsim exited with {code}; see {self.workdir / 'cardsim.log'}"
                )
            return predicate()

        return check

    def _spawn(self) -> None:
        self.control_path.unlink(missing_ok=True)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self._log = (self.workdir / "cardsim.log").open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cardsim",
                "--product",
                self.product,
                "--state",
                str(self.state),
                "--control",
                str(self.control_path),
                "--key-pool",
                str(KEY_POOL),
                "--debug",
            ],
            cwd=REPO,
            env=env,
            stderr=self._log,
        )

    def status(self) -> dict[str, Any]:
        """Control ``status``."""
        return self.control.call("status")

    def stop(self) -> int:
        """SIGTERM and wait (SIGKILL if it hangs); returns the exit code."""
        assert self.proc is not None
        try:
            self.proc.send_signal(signal.SIGTERM)
            code = self.proc.wait(timeout=10)
        finally:
            self.kill()
        wait_absent(CONTACT_READER)
        return code

    def kill(self) -> None:
        """Make sure the process is gone and reaped (idempotent; no waiting on pcscd)."""
        if self.proc is not None:
            reap(self.proc, timeout=5)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


@contextmanager
def simulator_running(simulator: Simulator) -> Iterator[Simulator]:
    """Start the simulator; whatever happens in the block, the process is reaped at the end."""
    try:
        simulator.start()
        yield simulator
    finally:
        simulator.kill()


def connect(reader_name: str, timeout: float = 15.0) -> Any:
    """A pyscard connection to the card in that reader, waiting for pcscd to see it."""
    from smartcard.Exceptions import CardConnectionException, NoCardException
    from smartcard.System import readers

    deadline = time.monotonic() + timeout
    while True:
        reader = next((r for r in readers() if str(r) == reader_name), None)
        if reader is not None:
            conn = reader.createConnection()
            try:
                conn.connect()
                conn.transmit(
                    [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00]
                )  # a stale handle fails here
                return conn
            except (NoCardException, CardConnectionException):
                with contextlib.suppress(CardConnectionException):
                    conn.disconnect()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no card in {reader_name}")
        time.sleep(0.05)


def card_present(reader_name: str) -> bool:
    """Whether pcscd currently reports a card in that reader."""
    from smartcard.Exceptions import CardConnectionException, NoCardException
    from smartcard.System import readers

    reader = next((r for r in readers() if str(r) == reader_name), None)
    if reader is None:
        return False
    conn = reader.createConnection()
    try:
        conn.connect()
    except (NoCardException, CardConnectionException):
        return False
    conn.disconnect()
    return True


def wait_absent(reader_name: str = CONTACT_READER) -> None:
    """Wait until pcscd has noticed that the card left the reader."""
    wait_for(lambda: not card_present(reader_name), what=f"card gone from {reader_name}")


def transmitter(conn: Any) -> Callable[[bytes], bytes]:
    """``bytes -> bytes`` transmit over a pyscard connection."""

    from smartcard.Exceptions import CardConnectionException

    def transmit(apdu: bytes) -> bytes:
        try:
            data, sw1, sw2 = conn.transmit(list(apdu))
        except CardConnectionException as err:
            # pcscd powers a newly seen card up on its own; a handle opened just before that
            # answers "card was reset" once. Anything else is the test's business.
            if getattr(err, "hresult", None) != SCARD_W_RESET_CARD:
                raise
            conn.disconnect()
            conn.connect()
            data, sw1, sw2 = conn.transmit(list(apdu))
        return bytes(data) + bytes([sw1, sw2])

    return transmit
