"""The station API served in process (no HTTP): the demo's fallback and the benchmark.

``ServiceApi(station).post(path, body)`` answers the two relay calls as the API views do: it reads
the request with the same DRF serializers (``api.views.stations``) and calls the same services, so
a ``personalization_station.relay`` loop can run against it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from api.views.station_protocol import (
    StationClaimSerializer,
    StationExchangeSerializer,
    card_identity,
)
from cms.models import Station
from cms.personalization.claims import station_claim
from cms.personalization.session import session_exchange
from core.errors import ApplicationError

_EXCHANGE = re.compile(r"station/sessions/([0-9a-f-]{36})/exchange")


class ServiceApi:
    """A station's view of the CMS, in process."""

    def __init__(self, station: Station) -> None:
        self.station = station
        self.calls = 0

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        self.calls += 1
        try:
            if path == "station/claim":
                claim = StationClaimSerializer(data=body or {})
                if not claim.is_valid():
                    return 400, {"message": "invalid claim", "extra": dict(claim.errors)}
                payload = station_claim(
                    station=self.station, identity=card_identity(claim.validated_data)
                )
                return (204, {}) if payload is None else (200, dict(payload))
            match = _EXCHANGE.fullmatch(path)
            if match is None:
                raise ValueError(f"ServiceApi does not serve {path}")
            exchange = StationExchangeSerializer(data=body or {})
            if not exchange.is_valid():
                return 400, {"message": "invalid exchange", "extra": dict(exchange.errors)}
            data = exchange.validated_data
            answer = session_exchange(
                session_id=UUID(match.group(1)),
                station=self.station,
                seq=data["seq"],
                responses=data.get("responses"),
                error=data.get("error"),
            )
            return 200, dict(answer)
        except ApplicationError as exc:
            return exc.status_code, {"message": exc.message, "extra": exc.extra}
