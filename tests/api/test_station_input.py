"""The station relay's fast paths answer exactly as DRF's general ones do."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from api.serializers import JsonInputSerializer
from api.views.station_protocol import CardResponseField, StationExchangeSerializer
from api.views.stations import StationNegotiation
from cards.station_protocol import MAX_RESPONSE_BYTES


class _PlainExchange(JsonInputSerializer):
    """The exchange request with its card responses as DRF's ListField validates them."""

    seq = serializers.IntegerField(min_value=0)
    responses = serializers.ListField(child=CardResponseField(), required=False, max_length=512)


LONGEST = "A" * (2 * MAX_RESPONSE_BYTES)


@pytest.mark.parametrize(
    "responses",
    [
        [],
        ["9000", "6A82", "", "abcdef0123456789"],
        [LONGEST, "9000"],
        [LONGEST + "0"],
        ["9000", None, "12"],
        ["90G0", 9000, None],
        ["9000", ["90"]],
        ["9000", "abc", "9000 "],
        ["9000"] * 513,
        "9000",
        {"a": "9000"},
    ],
)
def test_card_responses_as_drf(responses: Any) -> None:
    fast = StationExchangeSerializer(data={"seq": 1, "responses": responses})
    plain = _PlainExchange(data={"seq": 1, "responses": responses})
    assert fast.is_valid() == plain.is_valid()
    if plain.errors:
        assert fast.errors == plain.errors
        assert repr(fast.errors) == repr(plain.errors)  # the error codes too
    else:
        assert fast.validated_data["responses"] == plain.validated_data["responses"]


@pytest.mark.parametrize(
    "accept", [None, "*/*", "application/json", "text/html", "application/json; indent=2", ""]
)
@pytest.mark.parametrize("path", ["/x", "/x?format=json", "/x?format=api"])
def test_station_negotiation_as_drf(accept: str | None, path: str) -> None:
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().post(path, **headers))

    def chosen(negotiation: DefaultContentNegotiation) -> tuple[Any, ...]:
        renderers = [JSONRenderer()]
        try:
            renderer, media_type = negotiation.select_renderer(request, renderers)
        except Exception as exc:  # the same refusal (406, 404) either way
            return (type(exc), str(exc))
        return (renderers.index(renderer), media_type)

    assert chosen(StationNegotiation()) == chosen(DefaultContentNegotiation())
