"""vpcd client: connects a card interface to pcscd's virtual reader driver (vsmartcard-vpcd).

Framing both ways: 2-byte big-endian length, then payload. A 1-byte payload from the reader is a
control code (00 off, 01 on, 02 reset, 04 get ATR); anything longer is a command APDU. Latency
tricks of card-protocols.md §1: TCP_NODELAY, TCP_QUICKACK before every recv, one sendall per reply.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

from cardsim.card import CardRemovedError, Interface

log = logging.getLogger("cardsim.vpcd")

CTRL_OFF = 0x00
CTRL_ON = 0x01
CTRL_RESET = 0x02
CTRL_ATR = 0x04

# pcscd polls card presence every 400 ms and sees nothing of a swap shorter than that (the reader
# then stays "card removed" for good): an unplugged card stays out at least this long.
MIN_ABSENCE_S = 1.0


class _Closed(Exception):
    """The reader side closed the connection."""


class VpcdLink:
    """Keeps one interface plugged into one vpcd slot, reconnecting with backoff."""

    def __init__(self, interface: Interface, host: str, port: int, stop: threading.Event) -> None:
        self.interface = interface
        self.host = host
        self.port = port
        self.stop = stop
        self.wake = threading.Event()  # set to drop the connection (card removed / swapped)
        self.connected = threading.Event()
        self._sock: socket.socket | None = None
        self._held_until = 0.0

    def hold(self, seconds: float) -> None:
        """Keep this interface out of its reader ``seconds`` longer (a slot seen late)."""
        self._held_until = time.monotonic() + seconds

    def replug(self, interface: Interface | None = None) -> None:
        """Drop the current connection (the reader sees the card leave); optionally swap cards."""
        if interface is not None:
            self.interface = interface
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def run(self) -> None:
        """Serve until ``stop`` is set."""
        delay = 0.05
        unplugged_at = 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            if (
                not self.interface.card.present
                or now - unplugged_at < MIN_ABSENCE_S
                or now < self._held_until
            ):
                self.stop.wait(0.05)
                continue
            try:
                sock = socket.create_connection((self.host, self.port), timeout=2)
            except OSError:
                self.stop.wait(delay)
                delay = min(delay * 2, 1.0)
                continue
            delay = 0.05
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self.connected.set()
            log.info("%s plugged into %s:%d", self.interface.name, self.host, self.port)
            try:
                self._serve(sock)
            except (_Closed, OSError):
                pass
            finally:
                self._sock = None
                self.connected.clear()
                unplugged_at = time.monotonic()
                sock.close()
                log.info("%s unplugged from %s:%d", self.interface.name, self.host, self.port)

    def _recv_exact(self, sock: socket.socket, size: int) -> bytes:
        buf = b""
        while len(buf) < size:
            if hasattr(socket, "TCP_QUICKACK"):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = sock.recv(size - len(buf))
            if not chunk:
                raise _Closed
            buf += chunk
        return buf

    def _serve(self, sock: socket.socket) -> None:
        while not self.stop.is_set():
            length = int.from_bytes(self._recv_exact(sock, 2), "big")
            payload = self._recv_exact(sock, length) if length else b""
            interface = self.interface
            try:
                reply = self._answer(interface, payload)
            except CardRemovedError:
                return  # closing the socket is how a vpcd card leaves the reader
            if reply is not None:
                sock.sendall(len(reply).to_bytes(2, "big") + reply)

    @staticmethod
    def _answer(interface: Interface, payload: bytes) -> bytes | None:
        if len(payload) == 1:
            code = payload[0]
            log.debug("%s control %02X", interface.name, code)
            if code in (CTRL_ON, CTRL_RESET):
                interface.power_on()
                return None
            if code == CTRL_ATR:
                if not interface.card.present:
                    raise CardRemovedError
                return interface.atr
            return None
        return interface.transmit(payload)
