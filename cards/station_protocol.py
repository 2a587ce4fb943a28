"""The station protocol: every message between a personalization station and the CMS, typed once.

Both sides import this module. The station (``personalization_station``) may import only ``cards``
and the standard library (import-linter: "The station holds no keys"), the server may import
``cards`` as well: so the wire types live here, in the pure card library, next to the ``Batch``
and ``Step`` they carry, as ``TypedDict`` (the JSON itself, no conversion cost on the busiest
call) with the few functions that build and read them. The server validates the requests and
describes the answers in ``/api/schema/`` with DRF serializers (``api.views.stations``) that
mirror these definitions field for field; a test builds each message on one side and reads it
with the other.

The calls (JSON, ``POST /api/v1/…``, the station's token):

- ``station/claim``: ``ClaimRequest`` → 200 ``Running`` (first batch), ``InsertCard`` (no card
  given: which card to insert) or ``Outcome`` (the session ended at once); 204 nothing to do;
- ``station/sessions/<session>/exchange``: ``ExchangeRequest`` (the answers to batch ``seq``, or
  the error that stopped it) → 200 ``Running`` (next batch) or ``Outcome``;
- ``station/jobs/<job>/heartbeat``: no body → ``Heartbeat``;
- a refusal: 4xx with an ``ErrorBody``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NotRequired, TypedDict

from cards.programs.base import Batch, Interface, Step
from cards.transport import is_sensitive

MAX_RESPONSE_BYTES = 4096
"""The longest card response a station sends (hex: twice as many digits)."""
MAX_APDU_BYTES = 261
"""The longest command APDU a batch carries (extended length is not used)."""


class SessionState(enum.StrEnum):
    """``state`` of every answer: the session runs (a batch follows), waits for a card, or
    ended (the last five, the same values as the server's session status)."""

    RUNNING = "running"
    INSERT_CARD = "insert_card"
    DONE = "done"
    WIPED = "wiped"
    SPOILED = "spoiled"
    INTERRUPTED = "interrupted"
    ABORTED = "aborted"


ENDED = frozenset(
    {
        SessionState.DONE,
        SessionState.WIPED,
        SessionState.SPOILED,
        SessionState.INTERRUPTED,
        SessionState.ABORTED,
    }
)


# --- station → server ---------------------------------------------------------------------------


class ClaimRequest(TypedDict, total=False):
    """What the station read from the inserted card (public data only); without
    ``chip_serial`` the station asks which card to insert."""

    atr: str
    chip_serial: str
    desfire_uid: str
    reader: str


class ExchangeRequest(TypedDict):
    """The card's responses (hex, in order, one per step run) to batch ``seq``, or the
    ``error`` that stopped the batch (card removed, reader lost)."""

    seq: int
    responses: NotRequired[list[str]]
    error: NotRequired[str]


# --- server → station ---------------------------------------------------------------------------


class StepMessage(TypedDict):
    """One command APDU (hex), the status words (hex) that let the batch go on, and whether its
    data must stay out of logs."""

    label: str
    apdu: str
    expect: list[str]
    sensitive: bool
    interface: str
    holder_pin: NotRequired[bool]
    """The station fills in the data of this VERIFY with the PIN the holder types (certificate
    renewal); absent: false."""


class BatchMessage(TypedDict):
    label: str
    steps: list[StepMessage]


class Progress(TypedDict):
    """The phases completed so far, all phases of the program, and the mode (``personalize`` or
    ``rollback``)."""

    completed: list[str]
    phases: list[str]
    mode: str


class Running(TypedDict):
    """The session goes on: send ``batch`` and post the answers back under ``seq``."""

    session: str
    job: str
    state: Literal["running"]
    seq: int
    batch: BatchMessage
    progress: Progress


class InsertCard(TypedDict):
    """A job waits at this site for the card with ``chip_serial``."""

    state: Literal["insert_card"]
    job: str
    chip_serial: str


class Outcome(TypedDict):
    """The session ended: ``state`` is one of ``ENDED``; ``message`` says why when it failed."""

    session: str
    job: str
    state: str
    message: str
    card_id: str
    progress: Progress


class Heartbeat(TypedDict):
    """The renewed lease of a job the station holds (ISO 8601)."""

    job: str
    lease_expires_at: str


class ErrorBody(TypedDict):
    """A refusal (4xx): what to do, and facts the station may act on."""

    message: str
    extra: dict[str, Any]


SessionAnswer = Running | Outcome
"""The answer to an exchange."""
ClaimAnswer = Running | InsertCard | Outcome
"""The answer to a claim (200)."""


# --- building and reading ------------------------------------------------------------------------


class ProtocolError(ValueError):
    """A message that does not follow this protocol."""


def claim_request(
    *, atr: str = "", chip_serial: str = "", desfire_uid: str = "", reader: str = ""
) -> ClaimRequest:
    """The claim of the card read in a reader (hex fields upper case)."""
    return {
        "atr": atr.upper(),
        "chip_serial": chip_serial.upper(),
        "desfire_uid": desfire_uid.upper(),
        "reader": reader,
    }


def exchange_answers(seq: int, responses: Sequence[bytes]) -> ExchangeRequest:
    return {"seq": seq, "responses": [r.hex().upper() for r in responses]}


def exchange_error(seq: int, error: str) -> ExchangeRequest:
    return {"seq": seq, "error": error[:200]}


def step_message(step: Step) -> StepMessage:
    message: StepMessage = {
        "label": step.label,
        "apdu": step.apdu.hex().upper(),
        "expect": [f"{sw:04X}" for sw in step.expect],
        "sensitive": step.sensitive,
        "interface": step.interface.value,
    }
    if step.holder_pin:
        message["holder_pin"] = True
    return message


def batch_message(batch: Batch) -> BatchMessage:
    return {"label": batch.label, "steps": [step_message(s) for s in batch.steps]}


def batch_read(message: Mapping[str, Any]) -> Batch:
    """The ``Batch`` a ``BatchMessage`` carries (the inverse of ``batch_message``); a step whose
    instruction is sensitive is marked so even if the message forgot. ProtocolError if it is
    malformed."""
    steps = message.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ProtocolError("the server sent a batch without steps")
    out = []
    for step in steps:
        try:
            apdu = bytes.fromhex(str(step["apdu"]))
            expect = tuple(int(str(sw), 16) for sw in step["expect"])
            interface = Interface(str(step.get("interface", "contact")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"malformed step in the server's batch: {exc}") from None
        if not 4 <= len(apdu) <= MAX_APDU_BYTES:
            raise ProtocolError("a command APDU of the batch has an impossible length")
        out.append(
            Step(
                label=str(step.get("label", ""))[:80],
                apdu=apdu,
                expect=expect,
                sensitive=bool(step.get("sensitive")) or is_sensitive(apdu),
                interface=interface,
                holder_pin=step.get("holder_pin") is True and apdu[1:2] == b"\x20",
            )
        )
    return Batch(label=str(message.get("label", "")), steps=tuple(out))


def responses_read(raw: object, limit: int) -> tuple[bytes, ...]:
    """The card responses of an ``ExchangeRequest`` (1 to ``limit`` hex strings, each with at
    least the status word); ProtocolError otherwise."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= limit:
        raise ProtocolError(f"Send one response per command run (1 to {limit}).")
    out = []
    for item in raw:
        if not isinstance(item, str) or len(item) > 2 * MAX_RESPONSE_BYTES:
            raise ProtocolError(
                f"Each response is a hex string of at most {MAX_RESPONSE_BYTES} bytes."
            )
        try:
            value = bytes.fromhex(item)
        except ValueError:
            raise ProtocolError("A response is not hex.") from None
        if len(value) < 2:
            raise ProtocolError("A response carries at least the status word.")
        out.append(value)
    return tuple(out)
