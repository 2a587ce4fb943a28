"""The stage merger of cards.programs.flow: packing, events, and misuse."""

from __future__ import annotations

import pytest

from cards.apdu import ResponseApdu
from cards.errors import ProgramError, StatusWordError
from cards.programs.base import (
    Batch,
    CertificateReply,
    CertificateRequest,
    Checkpoint,
    Interface,
    Step,
)
from cards.programs.flow import Flow, Item, Progress, Stage, merge


def _item(label: str, expect: tuple[int, ...] = (0x9000,)) -> Item:
    return Item([Step(label, b"\x00\xa4\x00\x00", expect)])


def _checkpoint(completed: tuple[str, ...], last: str) -> Checkpoint:
    return Checkpoint("p", "CPS4", 1, completed, last)


def test_item_misuse() -> None:
    with pytest.raises(ProgramError, match="at least one step"):
        Item([])
    item = _item("SELECT")
    with pytest.raises(ProgramError, match="before it arrived"):
        _ = item.value
    with pytest.raises(ProgramError, match="before it arrived"):
        _ = item.response
    item.resolve([ResponseApdu(b"x", 0x9000)])
    assert item.value == b"x"


def test_stages_wait_for_events_and_tails_go_last() -> None:
    first, second, tail = _item("a"), _item("b"), _item("tail")

    def flow_a() -> Flow:
        yield Stage([first], emits=("phase_a",), tail=[tail], tail_needs="phase_b")

    def flow_b() -> Flow:
        yield Stage([second], needs="phase_a", emits=("phase_b",))

    program = merge(
        [flow_a(), flow_b()],
        phases=("phase_a", "phase_b"),
        progress=Progress(set(), []),
        checkpoint=_checkpoint,
    )
    batch = program.send(None)
    assert isinstance(batch, Batch)
    assert [s.label for s in batch.steps] == ["a", "b", "tail"]
    checkpoint = program.send((b"\x90\x00",) * 3)
    assert isinstance(checkpoint, Checkpoint)
    assert checkpoint.completed == ("phase_a",)
    assert checkpoint.last_step == "a"
    assert program.send(None) == _checkpoint(("phase_a", "phase_b"), "b")
    with pytest.raises(StopIteration):
        program.send(None)


def test_deadlock_and_unreachable_tail_are_program_errors() -> None:
    def waits() -> Flow:
        yield Stage([_item("a")], needs="never")

    with pytest.raises(ProgramError, match="deadlock"):
        merge([waits()], phases=(), progress=Progress(set(), []), checkpoint=_checkpoint).send(None)

    def bad_tail() -> Flow:
        yield Stage([_item("a")], tail=[_item("t")], tail_needs="never")

    with pytest.raises(ProgramError, match="tail waits"):
        merge([bad_tail()], phases=(), progress=Progress(set(), []), checkpoint=_checkpoint).send(
            None
        )


def test_certificate_request_must_be_answered_with_certificates() -> None:
    def asks() -> Flow:
        yield CertificateRequest(b"", {}, {})

    program = merge([asks()], phases=(), progress=Progress(set(), []), checkpoint=_checkpoint)
    assert isinstance(program.send(None), CertificateRequest)
    with pytest.raises(ProgramError, match="something else"):
        program.send(None)
    program = merge([asks()], phases=(), progress=Progress(set(), []), checkpoint=_checkpoint)
    program.send(None)
    with pytest.raises(StopIteration):
        program.send(CertificateReply({}))


def test_status_errors_use_pin_and_desfire_wording() -> None:
    def verify() -> Flow:
        yield Stage([Item([Step("VERIFY PUK", b"\x00\x20\x00\x82\x01\x31")])])

    program = merge([verify()], phases=(), progress=Progress(set(), []), checkpoint=_checkpoint)
    program.send(None)
    with pytest.raises(StatusWordError, match="VERIFY PUK: wrong PUK, 1 try left"):
        program.send((b"\x63\xc1",))

    def desfire() -> Flow:
        yield Stage(
            [
                Item(
                    [
                        Step(
                            "CreateApplication",
                            b"\x90\xca\x00\x00",
                            (0x9100,),
                            interface=Interface.CONTACTLESS,
                        )
                    ]
                )
            ]
        )

    program = merge([desfire()], phases=(), progress=Progress(set(), []), checkpoint=_checkpoint)
    program.send(None)
    with pytest.raises(StatusWordError, match="CreateApplication: duplicate"):
        program.send((b"\x91\xde",))
