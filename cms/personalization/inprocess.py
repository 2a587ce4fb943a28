"""The station API served in process (no HTTP): the demo's fallback and the benchmark.

``ServiceApi(station).post(path, body)`` answers the two relay calls exactly as the API views do,
by calling the same services, so a ``personalization_station.relay`` loop can run against it.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from cms.models import Station
from cms.personalization.jobs import CardIdentity
from cms.personalization.session import session_exchange, station_claim
from core.errors import ApplicationError

_EXCHANGE = re.compile(r"station/sessions/([0-9a-f-]{36})/exchange")


class ServiceApi:
    """A station's view of the CMS, in process."""

    def __init__(self, station: Station) -> None:
        self.station = station
        self.calls = 0

    def post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        self.calls += 1
        body = body or {}
        try:
            if path == "station/claim":
                identity = CardIdentity(
                    atr=str(body.get("atr", "")),
                    chip_serial=str(body["chip_serial"]).upper(),
                    desfire_uid=str(body.get("desfire_uid", "")).upper(),
                    reader=str(body.get("reader", "")),
                )
                payload = station_claim(station=self.station, identity=identity)
                return (204, {}) if payload is None else (200, payload)
            match = _EXCHANGE.fullmatch(path)
            if match is None:
                raise ValueError(f"ServiceApi does not serve {path}")
            payload = session_exchange(
                session_id=UUID(match.group(1)),
                station=self.station,
                seq=int(body["seq"]),
                responses=body.get("responses"),
                error=body.get("error"),
            )
            return 200, payload
        except ApplicationError as exc:
            return exc.status_code, {"message": exc.message, "extra": exc.extra}
