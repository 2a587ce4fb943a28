"""DRF serializers of the station protocol (``cards.station_protocol``), field for field: they
validate what a station sends and describe in ``/api/schema/`` what the server answers. The answers
themselves are built as the protocol's typed dicts by the services (``cms.personalization``), the
JSON as it goes out, with no second pass over the ~15 steps of a batch on the busiest call; a test
validates every answer of a real session with these serializers."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from api.serializers import JsonInputSerializer
from cards.station_protocol import MAX_RESPONSE_BYTES, SessionState
from cms.personalization.jobs import CardIdentity

HEX = r"^[0-9A-Fa-f]*$"
# the card responses one exchange may carry
MAX_EXCHANGE_RESPONSES = 512
_HEX = re.compile(r"[0-9A-Fa-f]*")
_ENDED = [
    s.value for s in SessionState if s not in (SessionState.RUNNING, SessionState.INSERT_CARD)
]


@extend_schema_field({"type": "string", "pattern": rf"^[0-9A-Fa-f]{{0,{2 * MAX_RESPONSE_BYTES}}}$"})
class CardResponseField(serializers.Field[str, str, str, Any]):
    """A card response in hex. A plain check: ``RegexField`` runs ``CharField``'s per-character
    surrogate scan on each of the ~130 responses a card sends, which cost more than the rest
    of the view; the service decodes and checks them again."""

    default_error_messages = {
        "invalid": f"A response is a hex string of at most {2 * MAX_RESPONSE_BYTES} digits."
    }

    def to_internal_value(self, data: Any) -> str:
        if (
            not isinstance(data, str)
            or len(data) > 2 * MAX_RESPONSE_BYTES
            or _HEX.fullmatch(data) is None
        ):
            self.fail("invalid")
        return data

    def to_representation(self, value: str) -> str:
        return value


def card_responses_plain(data: Any) -> bool:
    """Whether ``data`` is a list of card responses every one of which ``CardResponseField``
    takes, checked in one pass over the joined text (the usual case; how many there may be is
    the list field's own check)."""
    if type(data) is not list:
        return False
    try:
        joined = "".join(data)  # TypeError: an item is not text (null, a number)
    except TypeError:
        return False
    return (
        _HEX.fullmatch(joined) is not None
        and max(map(len, data), default=0) <= 2 * MAX_RESPONSE_BYTES
    )


class CardResponsesField(serializers.ListField):
    """The card responses of a batch. The usual case, all valid, is checked in one pass over the
    joined text rather than item by item through ``CardResponseField.run_validation`` (~30 a
    request); if any item is invalid, DRF's per-item walk gives the errors, the same as ever."""

    child = CardResponseField()  # ListField gives each instance its own copy

    def run_child_validation(self, data: Any) -> list[str]:
        if card_responses_plain(data):
            return list(data)
        validated: list[str] = super().run_child_validation(data)
        return validated


# --- station → server ---------------------------------------------------------------------------


class StationClaimSerializer(JsonInputSerializer):
    """``ClaimRequest``: the inserted card's public data; no chip serial: which card to insert?"""

    # whole bytes (the schema says so): half a byte is refused here, before any job is claimed
    atr = serializers.RegexField(
        r"^(?:[0-9A-Fa-f]{2})*$", max_length=66, required=False, allow_blank=True,
        error_messages={"invalid": "The ATR is whole bytes in hex: an even number of digits."},
    )  # fmt: skip
    chip_serial = serializers.RegexField(HEX, max_length=32, required=False, allow_blank=True)
    desfire_uid = serializers.RegexField(HEX, max_length=14, required=False, allow_blank=True)
    reader = serializers.CharField(max_length=100, required=False, allow_blank=True)


def card_identity(data: dict[str, Any]) -> CardIdentity | None:
    """The card of a validated ``ClaimRequest``, or None when it names none."""
    if not data.get("chip_serial"):
        return None
    return CardIdentity(
        atr=data.get("atr", ""),
        chip_serial=data["chip_serial"].upper(),
        desfire_uid=data.get("desfire_uid", "").upper(),
        reader=data.get("reader", ""),
    )


class StationExchangeSerializer(JsonInputSerializer):
    """``ExchangeRequest``: the responses to batch ``seq``, or the error that stopped it."""

    seq = serializers.IntegerField(min_value=0)
    responses = CardResponsesField(required=False, max_length=MAX_EXCHANGE_RESPONSES)
    error = serializers.CharField(max_length=200, required=False)


# --- server → station ---------------------------------------------------------------------------


# ``label`` is a field of the wire message; the serializer metaclass takes it out of the class
# before DRF's own ``Field.label`` could be shadowed (only the stubs see a clash).


class StationStepSerializer(serializers.Serializer[dict[str, Any]]):
    label = serializers.CharField()  # type: ignore[assignment]
    apdu = serializers.RegexField(HEX)
    expect = serializers.ListField(child=serializers.RegexField(r"^[0-9A-F]{4}$"))
    sensitive = serializers.BooleanField()
    interface = serializers.ChoiceField(choices=["contact", "contactless"])
    holder_pin = serializers.BooleanField(
        required=False,
        help_text="the station fills in this VERIFY with the PIN the holder types (renewal)",
    )


class StationBatchSerializer(serializers.Serializer[dict[str, Any]]):
    label = serializers.CharField(allow_blank=True)  # type: ignore[assignment]
    steps = StationStepSerializer(many=True, allow_empty=False)


class StationProgressSerializer(serializers.Serializer[dict[str, Any]]):
    completed = serializers.ListField(child=serializers.CharField())
    phases = serializers.ListField(child=serializers.CharField())
    mode = serializers.ChoiceField(choices=["personalize", "rollback", "renew"])


class StationRunningSerializer(serializers.Serializer[dict[str, Any]]):
    """``Running``: send ``batch`` to the card and post the answers back under ``seq``."""

    session = serializers.UUIDField()
    job = serializers.UUIDField()
    state = serializers.ChoiceField(choices=[SessionState.RUNNING.value])
    seq = serializers.IntegerField(min_value=1)
    batch = StationBatchSerializer()
    progress = StationProgressSerializer()


class StationInsertCardSerializer(serializers.Serializer[dict[str, Any]]):
    """``InsertCard``: a job of this site waits for the card with ``chip_serial``."""

    state = serializers.ChoiceField(choices=[SessionState.INSERT_CARD.value])
    job = serializers.UUIDField()
    chip_serial = serializers.RegexField(HEX)


class StationOutcomeSerializer(serializers.Serializer[dict[str, Any]]):
    """``Outcome``: the session ended; ``message`` says why when it failed."""

    session = serializers.UUIDField()
    job = serializers.UUIDField()
    state = serializers.ChoiceField(choices=_ENDED)
    message = serializers.CharField(allow_blank=True)
    card_id = serializers.UUIDField()
    progress = StationProgressSerializer()


class StationHeartbeatSerializer(serializers.Serializer[dict[str, Any]]):
    """``Heartbeat``: the job's renewed lease."""

    job = serializers.UUIDField()
    lease_expires_at = serializers.DateTimeField()


class ErrorBodySerializer(serializers.Serializer[dict[str, Any]]):
    """``ErrorBody``: every refusal."""

    message = serializers.CharField()
    extra = serializers.DictField()


CLAIM_ANSWER = PolymorphicProxySerializer(
    component_name="StationClaimAnswer",
    serializers=[StationRunningSerializer, StationInsertCardSerializer, StationOutcomeSerializer],
    resource_type_field_name=None,
)
SESSION_ANSWER = PolymorphicProxySerializer(
    component_name="StationSessionAnswer",
    serializers=[StationRunningSerializer, StationOutcomeSerializer],
    resource_type_field_name=None,
)
