"""Building blocks for programs: items that parse their own responses, stages, and a merger that
packs two independent flows (contact chip, DESFire) into shared round trips.

A *flow* is a generator yielding ``Stage``s (or a ``CertificateRequest``, forwarded to the server).
Each round trip takes at most one stage from every flow; a stage that ``needs`` an event waits for
a stage that ``emits`` it, placed earlier in the same round trip or in a previous one. A stage's
``tail`` goes at the very end of the round trip (after the other flows' stages), for commands that
must follow another flow's step but need no new response. Items are resolved in batch order, so an
error names the first failing step and nothing after it is trusted.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field

from cards.apdu import ResponseApdu
from cards.errors import DesfireStatusError, ProgramError, StatusWordError
from cards.iso7816 import check_verification
from cards.programs.base import (
    Batch,
    CertificateReply,
    CertificateRequest,
    Checkpoint,
    Interface,
    Reply,
    Request,
    Step,
)

__all__ = ["Flow", "Item", "Stage", "merge"]


class Item:
    """One logical command (one or more steps) and the handler that checks its responses."""

    def __init__(
        self, steps: Sequence[Step], handler: Callable[[list[ResponseApdu]], bytes] | None = None
    ) -> None:
        if not steps:
            raise ProgramError("an item needs at least one step")
        self.steps = tuple(steps)
        self._handler = handler
        self._value: bytes | None = None
        self.responses: list[ResponseApdu] = []

    @property
    def value(self) -> bytes:
        """The checked data of the response (ProgramError if read before resolution)."""
        if self._value is None:
            raise ProgramError(f"{self.steps[-1].label}: response read before it arrived")
        return self._value

    @property
    def response(self) -> ResponseApdu:
        """The last raw response."""
        if not self.responses:
            raise ProgramError(f"{self.steps[-1].label}: response read before it arrived")
        return self.responses[-1]

    def resolve(self, responses: list[ResponseApdu]) -> None:
        """Run the handler's checks (MAC, format) on responses whose status words were expected."""
        self.responses = responses
        self._value = self._handler(responses) if self._handler else responses[-1].data


def _status_error(step: Step, response: ResponseApdu) -> StatusWordError:
    if step.interface is Interface.CONTACTLESS and response.sw1 == 0x91:
        return DesfireStatusError(step.label, response.sw2)
    ins = step.apdu[1] if len(step.apdu) > 1 else 0
    if ins in (0x20, 0x24, 0x2C) and (response.sw & 0xFFF0 == 0x63C0 or response.sw == 0x6983):
        try:
            check_verification(response, step.label, "PIN" if "PUK" not in step.label else "PUK")
        except StatusWordError as exc:
            return exc
    return StatusWordError(step.label, response.sw)


@dataclass(slots=True)
class Stage:
    """What one flow contributes to one round trip."""

    items: list[Item]
    needs: str | None = None
    emits: tuple[str, ...] = ()
    tail: list[Item] = field(default_factory=list)
    tail_needs: str | None = None


Flow = Generator[Stage | CertificateRequest, CertificateReply | None, None]


def _advance(flow: Flow, value: CertificateReply | None) -> Generator[Request, Reply, Stage | None]:
    """Run a flow to its next stage, forwarding certificate requests to the server."""
    while True:
        try:
            request = flow.send(value)
        except StopIteration:
            return None
        if isinstance(request, Stage):
            return request
        reply = yield request
        if not isinstance(reply, CertificateReply):
            raise ProgramError("a certificate request was answered with something else")
        value = reply


def _resolve(items: Iterable[Item], raw: Sequence[bytes]) -> None:
    index = 0
    for item in items:
        responses: list[ResponseApdu] = []
        for step in item.steps:
            if index >= len(raw):
                raise ProgramError(f"{step.label}: no response (the relay returned {len(raw)})")
            response = ResponseApdu.decode(raw[index], step.label)
            index += 1
            responses.append(response)
            if response.sw not in step.expect:
                raise _status_error(step, response)
        item.resolve(responses)
    if index != len(raw):
        raise ProgramError(f"the relay returned {len(raw)} responses for {index} steps")


@dataclass(slots=True)
class Progress:
    """Events reached so far, and the phases checkpointed in order."""

    events: set[str]
    completed: list[str]


def merge(
    flows: Sequence[Flow],
    *,
    phases: Sequence[str],
    progress: Progress,
    checkpoint: Callable[[tuple[str, ...], str], Checkpoint],
) -> Generator[Request, Reply, None]:
    """Pack the flows' stages into batches; yield a Checkpoint for every phase completed."""
    current: list[Stage | None] = []
    for flow in flows:
        current.append((yield from _advance(flow, None)))
    round_trip = 0
    while any(stage is not None for stage in current):
        round_trip += 1
        placed: list[int] = []
        events = set(progress.events)
        items: list[Item] = []
        moved = True
        while moved:
            moved = False
            for index, stage in enumerate(current):
                if stage is None or index in placed:
                    continue
                if stage.needs is not None and stage.needs not in events:
                    continue
                items += stage.items
                events.update(stage.emits)
                placed.append(index)
                moved = True
        if not placed:
            raise ProgramError("program deadlock: every flow waits for an event")
        for index in placed:
            stage = current[index]
            assert stage is not None
            if stage.tail:
                if stage.tail_needs is not None and stage.tail_needs not in events:
                    raise ProgramError(f"stage tail waits for {stage.tail_needs}, not reached")
                items += stage.tail
        label = f"round trip {round_trip}"
        reply = yield Batch(label, tuple(step for item in items for step in item.steps))
        if not isinstance(reply, tuple):
            raise ProgramError("a batch was answered with something other than responses")
        _resolve(items, reply)
        for index in placed:
            stage = current[index]
            assert stage is not None
            for event in stage.emits:
                progress.events.add(event)
                if event in phases and event not in progress.completed:
                    progress.completed.append(event)
                    last = (stage.items or stage.tail)[-1].steps[-1].label
                    yield checkpoint(tuple(progress.completed), last)
        for index in placed:
            current[index] = yield from _advance(flows[index], None)
