"""Real pcscd + vsmartcard-vpcd + ``python -m cardsim`` for tests (importable by other packages).

The process, port and wait helpers are ``cardsim.rig``'s (shared with ``manage.py demo`` and the
benchmarks); this module adds what needs pyscard and the machine's pcscd. ``pcscd_running()``
starts ``pcscd --foreground`` when no live daemon answers (a socket file left by a dead pcscd does
not count) and stops it only if it started it. ``Simulator`` runs one ``python -m cardsim`` process
plugged into the vpcd slots and drives it through its control socket; ``simulator_running()``
starts one and always reaps it: a leaked simulator keeps the vpcd ports and makes every later pcscd
test time out.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cardsim import rig
from cardsim.rig import KEY_POOL, PCSCD_PID_FILE, PCSCD_SOCKET, pcscd_alive, wait_until

__all__ = [
    "CONTACTLESS_READER",
    "CONTACT_READER",
    "KEY_POOL",
    "PCSCD_PID_FILE",
    "PCSCD_SOCKET",
    "Simulator",
    "card_present",
    "connect",
    "pcscd_alive",
    "pcscd_running",
    "reap",
    "simulator_running",
    "transmitter",
    "wait_absent",
    "wait_for",
]

CONTACT_READER = "Virtual PCD 00 00"
CONTACTLESS_READER = "Virtual PCD 00 01"
SCARD_W_RESET_CARD = 0x80100068
REPO = rig.REPO


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll until ``predicate()`` holds; TimeoutError naming ``what`` otherwise."""
    wait_until(predicate, timeout=timeout, what=what)


reap = rig.terminate


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
            wait_for(lambda: proc.poll() is not None or pcscd_alive(), what="pcscd to listen")
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


class Simulator(rig.Simulator):
    """``python -m cardsim`` behind the machine's pcscd, with the test key pool and the debug log;
    started once pcscd itself sees the card in each of its readers (a CPS4 has two interfaces),
    stopped once it saw the card go from them."""

    def __init__(self, workdir: Path, state: str = "card.json", product: str = "cps4") -> None:
        super().__init__(workdir, workdir / state, product=product, key_pool=KEY_POOL, debug=True)

    @property
    def readers(self) -> tuple[str, ...]:
        """The readers pcscd shows this card in: the contactless one too for a CPS4."""
        return (CONTACT_READER,) if self.product == "cps3" else (CONTACT_READER, CONTACTLESS_READER)

    def start(self, ready: Any = ()) -> None:
        """Start and wait until the vpcd slots are plugged and pcscd reports the card in each
        reader: a station started next must not find only the contact one."""
        seen = [(f"pcscd to see the card in {r}", functools.partial(card_present, r))
                for r in self.readers]  # fmt: skip
        super().start([*ready, *seen])

    def stop(self) -> int:
        """SIGTERM and wait (SIGKILL if it hangs); returns the exit code once pcscd saw it go."""
        code = super().stop()
        for reader in self.readers:
            wait_absent(reader)
        return code


@contextmanager
def simulator_running(simulator: Simulator) -> Iterator[Simulator]:
    """Start the simulator; whatever happens in the block, the process is reaped at the end, and
    pcscd is given the time to see the card go (the next test's card must not meet the state this
    one left in the readers)."""
    try:
        simulator.start()
        yield simulator
    finally:
        started = simulator.proc is not None
        simulator.kill()
        if started and pcscd_alive():
            for reader in simulator.readers:
                with contextlib.suppress(TimeoutError):
                    wait_absent(reader)


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
