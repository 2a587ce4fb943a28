"""Calling a WSGI application in a test, as a server would."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


class Reply:
    """The answer of ``app`` to ``environ``: its status line, headers and body."""

    def __init__(self, app: Any, environ: dict[str, Any]) -> None:
        self.status = ""
        self.headers: dict[str, str] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            self.status = status
            self.headers = dict(headers)

        chunks: Iterable[bytes] = app(environ, start_response)
        self.body = b"".join(chunks)

    @property
    def code(self) -> int:
        return int(self.status.split()[0])

    def json(self) -> Any:
        assert self.headers["Content-Type"] == "application/json"
        return json.loads(self.body)
