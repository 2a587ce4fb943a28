"""Real pcscd + vsmartcard-vpcd + ``python -m cardsim`` for tests (importable by other packages).

``pcscd_running()`` starts ``pcscd --foreground`` when no daemon is listening and stops it only if
it started it. ``Simulator`` runs one ``python -m cardsim`` process plugged into the vpcd slots and
drives it through its control socket.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cardsim.control import ControlClient

PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
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


@contextmanager
def pcscd_running() -> Iterator[None]:
    """A pcscd for the duration; started here only when none is running."""
    proc: subprocess.Popen[bytes] | None = None
    if not PCSCD_SOCKET.exists():
        proc = subprocess.Popen(
            ["pcscd", "--foreground"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(PCSCD_SOCKET.exists, what="pcscd socket")
    try:
        yield
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)


class Simulator:
    """One ``python -m cardsim`` process and its control channel."""

    def __init__(self, workdir: Path, state: str = "card.json", product: str = "cps4") -> None:
        self.workdir = workdir
        self.state = workdir / state
        self.product = product
        self.control_path = workdir / "cardsim.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.control = ControlClient(self.control_path)

    def start(self) -> None:
        """Start and wait until both vpcd slots are plugged."""
        self.control_path.unlink(missing_ok=True)
        env = dict(os.environ, PYTHONPATH=str(REPO))
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
            stderr=open(self.workdir / "cardsim.log", "ab"),  # noqa: SIM115 - child owns it
        )
        wait_for(self.control_path.exists, what="cardsim control socket")
        wait_for(lambda: bool(self.status()["contact_connected"]), what="vpcd connection")
        wait_for(lambda: card_present(CONTACT_READER), what="pcscd to see the card")

    def status(self) -> dict[str, Any]:
        """Control ``status``."""
        return self.control.call("status")

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=10)
        self.proc = None
        wait_absent(CONTACT_READER)
        return code


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
