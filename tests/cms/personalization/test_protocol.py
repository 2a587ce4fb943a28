"""The station and the server agree on every message of the station protocol
(``cards.station_protocol``): each request the station builds passes the server's serializer, each
answer the server gives passes the serializer that documents it in ``/api/schema/`` and is read
back by the station, for a whole session, an ended one, an insert-card answer, a heartbeat and a
refusal."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

import pytest

from tests.cms.personalization.conftest import DrfApi, card_queued, link_of

pytestmark = pytest.mark.django_db(transaction=True)


def _serializers() -> dict[str, Any]:
    from api.views import station_protocol as s

    return {
        "ClaimRequest": s.StationClaimSerializer,
        "ExchangeRequest": s.StationExchangeSerializer,
        "StepMessage": s.StationStepSerializer,
        "BatchMessage": s.StationBatchSerializer,
        "Progress": s.StationProgressSerializer,
        "Running": s.StationRunningSerializer,
        "InsertCard": s.StationInsertCardSerializer,
        "Outcome": s.StationOutcomeSerializer,
        "Heartbeat": s.StationHeartbeatSerializer,
        "ErrorBody": s.ErrorBodySerializer,
    }


def test_every_typed_message_has_a_serializer_with_the_same_fields():
    from cards import station_protocol

    for name, serializer in _serializers().items():
        typed = getattr(station_protocol, name)
        keys = set(typing.get_type_hints(typed))
        assert keys == set(serializer().fields), name
        required = {k for k, f in serializer().fields.items() if f.required}
        assert required <= set(typed.__required_keys__), name


def test_a_batch_reads_back_as_the_batch_the_program_yielded():
    from cards.programs.base import Batch, Interface, Step
    from cards.station_protocol import batch_message, batch_read

    batch = Batch(
        "phase",
        (
            Step("SELECT", bytes.fromhex("00A4040007A0000001510000")),
            Step("VERIFY", bytes.fromhex("0020008104313233"), (0x9000, 0x63C2), sensitive=True),
            Step("GET UID", bytes.fromhex("FFCA000000"), interface=Interface.CONTACTLESS),
        ),
    )
    assert batch_read(batch_message(batch)) == batch


class Recording(DrfApi):
    """The station's ``Api`` over the real views, checking each message both ways."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.states: list[str] = []
        self.modes: list[str] = []

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        from cards.station_protocol import SessionState, batch_read

        serializers = _serializers()
        request = serializers["ClaimRequest" if path == "station/claim" else "ExchangeRequest"]
        check = request(data=dict(body or {}))
        assert check.is_valid(), check.errors  # the server reads what the station sends
        status, answer = super().post(path, dict(body or {}))
        if status == 204:
            return status, answer
        state = answer["state"]
        self.states.append(state)
        self.modes.append(answer.get("progress", {}).get("mode", ""))
        kind = {
            SessionState.RUNNING: "Running",
            SessionState.INSERT_CARD: "InsertCard",
        }.get(state, "Outcome")
        documented = serializers[kind](data=answer)
        assert documented.is_valid(), (kind, documented.errors)  # the schema says what it sends
        assert set(answer) == set(documented.fields)
        if kind == "Running":
            assert batch_read(answer["batch"]).steps  # the station reads what it is sent
        return status, answer


def test_a_whole_session_follows_the_protocol(scene, virtual_card):
    from personalization_station.relay import personalize

    card_queued(scene, virtual_card)
    api = Recording(scene.token)
    outcome = personalize(api, link_of(virtual_card))
    assert outcome.state == "done", outcome.message
    assert api.states[0] == "running" and api.states[-1] == "done"
    assert len(api.states) == outcome.round_trips


def test_a_rolled_back_session_ends_by_the_protocol(scene, virtual_card):
    from personalization_station.relay import personalize

    card_queued(scene, virtual_card)
    virtual_card.faults.sw_at[virtual_card.apdu_count + 40] = 0x6581
    api = Recording(scene.token)
    outcome = personalize(api, link_of(virtual_card))
    assert outcome.state == "wiped", outcome.message
    assert api.states[-1] == "wiped" and "rollback" in api.modes


def test_insert_card_heartbeat_and_refusal_follow_the_protocol(scene, virtual_card):
    from cards.station_protocol import claim_request, exchange_answers

    card_queued(scene, virtual_card)
    api = Recording(scene.token)
    status, answer = api.post("station/claim", claim_request())
    assert status == 200 and answer["state"] == "insert_card"
    assert answer["chip_serial"] == virtual_card.serial.hex().upper()

    heartbeat = api.client.post(f"/api/v1/station/jobs/{answer['job']}/heartbeat", format="json")
    assert heartbeat.status_code == 200
    documented = _serializers()["Heartbeat"](data=heartbeat.json())
    assert documented.is_valid(), documented.errors

    body = exchange_answers(1, [bytes.fromhex("9000")])
    refused = api.client.post(
        "/api/v1/station/sessions/00000000-0000-4000-8000-000000000000/exchange",
        body,
        format="json",
    )
    assert refused.status_code == 404
    error = _serializers()["ErrorBody"](data=refused.json())
    assert error.is_valid(), error.errors
