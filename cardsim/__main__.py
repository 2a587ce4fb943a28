"""``python -m cardsim``: a virtual CPS card plugged into pcscd through vsmartcard-vpcd."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from cardsim.card import Card, KeyPool
from cardsim.control import ControlServer
from cardsim.vpcd import VpcdLink

log = logging.getLogger("cardsim")


class Simulator:
    """The current card, its two vpcd links and the control channel."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.keygen = KeyPool.from_pem_file(args.key_pool) if args.key_pool else KeyPool()
        self.card = self._open(Path(args.state), args.product)
        self.contact = VpcdLink(self.card.contact, args.host, args.port, self.stop)
        self.contactless: VpcdLink | None = None
        if self.card.contactless is not None:
            self.contactless = VpcdLink(
                self.card.contactless, args.host, args.contactless_port, self.stop
            )

    def _open(self, path: Path, product: str, factory_default: bool | None = None) -> Card:
        if factory_default is None:
            factory_default = self.args.factory_default
        return Card.open(
            path,
            product,
            blank={"factory_default": True} if factory_default else None,
            keygen=self.keygen,
            apdu_delay_ms=self.args.apdu_delay_ms,
            key_delay_ms=self.args.key_delay_ms,
        )

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """One control request (see cardsim.control)."""
        op = request.get("op")
        with self.lock:
            card = self.card
            if op == "status":
                return {
                    "ok": True,
                    "present": card.present,
                    "state": str(card.path),
                    "product": card.product,
                    "serial": card.serial.hex(),
                    "apdus": card.apdu_count,
                    "contact_connected": self.contact.connected.is_set(),
                }
            if op == "remove":
                card.remove()
                self._replug()
                return {"ok": True}
            if op == "insert":
                if "state" in request:
                    card.remove()
                    self._replug()
                    product = str(request.get("product", self.args.product))
                    factory = request.get("factory_default")
                    self.card = self._open(
                        Path(request["state"]),
                        product,
                        None if factory is None else bool(factory),
                    )
                    self._replug(swap=True)
                delay_ms = float(request.get("contactless_delay_ms", 0))
                if delay_ms > 0 and self.contactless is not None:
                    self.contactless.hold(delay_ms / 1000)
                self.card.insert()
                return {"ok": True, "serial": self.card.serial.hex()}
            if op == "fault":
                base = card.apdu_count
                faults = card.faults
                if request.get("tear_at") is not None:
                    faults.tear_at = base + int(request["tear_at"])
                    faults.tear_executes = bool(request.get("tear_executes", False))
                for n, sw in dict(request.get("sw_at", {})).items():
                    faults.sw_at[base + int(n)] = int(sw)
                for n, bit in dict(request.get("flip_at", {})).items():
                    faults.flip_at[base + int(n)] = int(bit)
                return {"ok": True, "base": base}
            if op == "clear_faults":
                card.faults.tear_at = None
                card.faults.sw_at.clear()
                card.faults.flip_at.clear()
                return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def _replug(self, swap: bool = False) -> None:
        self.contact.replug(self.card.contact if swap else None)
        if self.contactless is not None:
            if swap and self.card.contactless is not None:
                self.contactless.replug(self.card.contactless)
            else:
                self.contactless.replug()

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT."""
        control = ControlServer(Path(self.args.control), self.handle)
        control.start()
        threads = [threading.Thread(target=self.contact.run, daemon=True)]
        if self.contactless is not None:
            threads.append(threading.Thread(target=self.contactless.run, daemon=True))
        for t in threads:
            t.start()
        log.info("card %s (%s) ready", self.card.serial.hex(), self.card.product)
        self.stop.wait()
        self.contact.replug()
        if self.contactless is not None:
            self.contactless.replug()
        for t in threads:
            t.join(timeout=3)
        control.close()
        return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m cardsim", description=__doc__)
    parser.add_argument("--product", choices=("cps4", "cps3"), default="cps4")
    parser.add_argument("--state", required=True, help="JSON state file (created blank if absent)")
    parser.add_argument(
        "--factory-default",
        action="store_true",
        help="a new blank DESFire keeps NXP's PICC key (AES zeros, version 0) instead of the "
        "test vendor's transport key (refused in production)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=35963, help="vpcd slot of the contact chip")
    parser.add_argument("--contactless-port", type=int, default=35964, help="DESFire vpcd slot")
    parser.add_argument("--control", help="control socket path (default: STATE.sock)")
    parser.add_argument("--key-delay-ms", type=float, default=0.0, help="on-chip RSA generation")
    parser.add_argument("--apdu-delay-ms", type=float, default=0.0, help="added to every APDU")
    parser.add_argument("--key-pool", type=Path, help="PEM file of pre-generated RSA keys (tests)")
    parser.add_argument("--debug", action="store_true", help="log every exchange (no secrets)")
    args = parser.parse_args(argv)
    if args.control is None:
        args.control = args.state + ".sock"
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    sim = Simulator(args)

    def _stop(signum: int, frame: FrameType | None) -> None:
        sim.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return sim.run()


if __name__ == "__main__":
    sys.exit(main())
