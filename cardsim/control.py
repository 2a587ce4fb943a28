"""Test control channel of a running simulator: a Unix socket speaking one JSON object per line.

Requests ``{"op": ...}``; every answer is a JSON object with ``"ok"``. Operations:
``status``; ``remove``; ``insert`` (optional ``state`` path and ``product``: swap in that card, a
new blank one when the file does not exist, ``factory_default``: true makes that blank DESFire
with the public factory PICC key; optional ``contactless_delay_ms``: the contactless
slot sees the card that much later, as pcscd sometimes reports it); ``fault`` (``tear_at``,
``tear_executes``, ``sw_at`` {n: sw}, ``flip_at`` {n: bit}, numbers counted from the next
APDU = 1); ``clear_faults``.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ControlServer:
    """Serves control requests on a Unix socket in a background thread."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        path.unlink(missing_ok=True)
        outer = handler

        class _Request(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for line in self.rfile:
                    try:
                        request = json.loads(line)
                        if not isinstance(request, dict):
                            raise ValueError("a JSON object is expected")
                        answer = outer(request)
                    except (ValueError, KeyError, TypeError, OSError) as err:
                        answer = {"ok": False, "error": str(err)}
                    self.wfile.write(json.dumps(answer).encode() + b"\n")
                    self.wfile.flush()

        self.server = socketserver.ThreadingUnixStreamServer(str(path), _Request)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        """Start serving."""
        self.thread.start()

    def close(self) -> None:
        """Stop serving and remove the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.path.unlink(missing_ok=True)


class ControlClient:
    """Client side, for tests: ``ControlClient(path).call("remove")``."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout

    def call(self, op: str, **arguments: Any) -> dict[str, Any]:
        """Send one request and return the answer; RuntimeError when it failed."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(str(self.path))
            sock.sendall(json.dumps({"op": op, **arguments}).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
        answer: dict[str, Any] = json.loads(buf)
        if not answer.get("ok"):
            raise RuntimeError(f"cardsim control {op}: {answer.get('error')}")
        return answer
