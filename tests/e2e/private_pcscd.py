"""A pcscd of the test's own: other test sessions on the machine may run (or leave behind) a
pcscd and virtual cards on the standard vpcd ports, and a vpcd slot takes one card.

The daemon runs in a private mount namespace (its ``/run/pcscd`` is a directory of the test, bind-
mounted, so it never meets another pcscd's pid file); the test's clients reach its socket through
``PCSCLITE_CSOCK_NAME``; it and opens vpcd slots on free ports.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.cardsim.pcscd_support import (
    CONTACT_READER,
    KEY_POOL,
    REPO,
    Simulator,
    card_present,
    wait_for,
)

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 65000:
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free pair of ports for vpcd")


@contextmanager
def private_pcscd(workdir: Path) -> Iterator[int]:
    """Run the daemon; yields the vpcd base port (contact), +1 is the contactless slot."""
    if shutil.which("unshare") is None or shutil.which("pcscd") is None:
        raise RuntimeError("unshare and pcscd are needed for a private pcscd")
    port = _free_port_pair()
    conf = workdir / "reader.conf.d"
    conf.mkdir()
    (conf / "vpcd").write_text(
        f'FRIENDLYNAME "Virtual PCD"\nDEVICENAME   /dev/null:0x{port:04X}\n'
        f"LIBPATH      {VPCD_DRIVER}\nCHANNELID    0x{port:04X}\n"
    )
    run_dir = workdir / "pcscd-run"
    run_dir.mkdir()
    sock = run_dir / "pcscd.comm"
    os.environ["PCSCLITE_CSOCK_NAME"] = str(sock)  # the clients' side (libpcsclite)
    # The daemon ignores PCSCLITE_CSOCK_NAME: its /run/pcscd is our directory, bind-mounted.
    script = f'mount --bind "{run_dir}" /run/pcscd && exec pcscd --foreground --config "{conf}"'

    log = (workdir / "pcscd.log").open("wb")
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    try:
        wait_for(sock.exists, what="private pcscd socket")
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


class PortSimulator(Simulator):
    """``python -m cardsim`` on the private daemon's vpcd ports."""

    def __init__(self, workdir: Path, port: int) -> None:
        super().__init__(workdir)
        self.port = port

    def start(self) -> None:
        self.control_path.unlink(missing_ok=True)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cardsim", "--product", "cps4", "--state", str(self.state),
             "--control", str(self.control_path), "--key-pool", str(KEY_POOL),
             "--port", str(self.port), "--contactless-port", str(self.port + 1), "--debug"],
            cwd=REPO,
            env=env,
            stderr=(self.workdir / "cardsim.log").open("ab"),
        )  # fmt: skip
        wait_for(self.control_path.exists, what="cardsim control socket")
        wait_for(lambda: bool(self.status()["contact_connected"]), what="vpcd connection")
        wait_for(lambda: card_present(CONTACT_READER), what="pcscd to see the card")
