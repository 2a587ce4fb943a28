"""The host's CPS4 program (``cards.programs.cps4``) against a virtual card, with a trace of every
APDU: which step sent it and where the checkpoints fell. Test code only: the server stand-ins
(issuer, keys) come from ``tests.cards.scenario``; the card is ``cardsim``'s, not the test double,
so the host and the simulator meet here and nowhere else in process.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cards import crypto
from cards.errors import TransportError
from cards.products import CPS4, card_number
from cards.programs.base import (
    Batch,
    CertificateReply,
    CertificateRequest,
    Checkpoint,
    Interface,
    Program,
    Reply,
    Step,
    run_batch,
)
from cards.programs.cps4 import Cps4Inputs, Identity, StockRecord
from cards.scp03 import Scp03StaticKeys
from cards.secret import Secret
from cardsim.card import TEST_SCP03_MASTER, Card, CardRemovedError
from demo.scenario import ADMIN_MASTER, app_initial_key, app_keys, picc_key, transport_key


def cps4_inputs(card: Card, *, certificates: Mapping[str, bytes] | None = None) -> Cps4Inputs:
    """What the server would compute for this blank virtual card (test master keys)."""
    assert card.desfire_chip is not None
    assert CPS4.scp03 is not None
    scp03 = CPS4.scp03
    serial = card.serial
    uid = card.desfire_chip.state.uid
    transport_version = card.desfire_chip.state.picc_key.version  # the batch file's, in a test
    return Cps4Inputs(
        stock=StockRecord(card_serial=serial, kdd=serial, desfire_uid=uid, atr=card.contact.atr),
        identity=Identity(
            card_number=card_number(serial),
            national_id="810002813839",
            valid_from=dt.date(2025, 7, 1),
            valid_until=dt.date(2031, 6, 30),
        ),
        scp03_keys=Scp03StaticKeys.diversify(
            TEST_SCP03_MASTER, serial, scp03.kvn, scp03.key_length
        ),
        desfire_transport_key=transport_key(uid, transport_version),
        desfire_transport_key_version=transport_version,
        desfire_picc_key=picc_key(uid),
        desfire_app_keys=app_keys(uid),
        desfire_app_initial_key=app_initial_key(uid),
        admin_key=crypto.unblock_admin_key(ADMIN_MASTER, serial, 1),
        pin=Secret("2468"),
        puk=Secret("13572468"),
        access_credential=hashlib.sha256(b"access" + serial).digest()[:16],  # same on resume
        certificates=certificates,
    )


class _CardTransport:
    """One interface of the virtual card; a torn card shows as the station's TransportError."""

    def __init__(self, transmit: Callable[[bytes], bytes]) -> None:
        self._transmit = transmit

    def transmit(self, apdu: bytes) -> bytes:
        try:
            return self._transmit(apdu)
        except CardRemovedError:
            raise TransportError("card removed") from None


@dataclass
class Trace:
    """Every APDU of a run (1-based, GET RESPONSEs included) and the checkpoints persisted."""

    labels: list[str] = field(default_factory=list)
    """``labels[i - 1]``: the step that sent APDU ``i``."""
    checkpoints: list[tuple[int, Checkpoint]] = field(default_factory=list)
    """(APDUs sent when the checkpoint was yielded, checkpoint)."""
    responses: list[tuple[str, bytes]] = field(default_factory=list)
    """(step label, raw final response) of every step answered."""

    @property
    def apdus(self) -> int:
        return len(self.labels)

    def index_of(self, label: str) -> int:
        """The number of the last APDU the step ``label`` sent (ValueError if it never ran)."""
        return max(i for i, text in enumerate(self.labels, 1) if text == label)

    def last_checkpoint(self) -> Checkpoint | None:
        return self.checkpoints[-1][1] if self.checkpoints else None


def drive(
    program: Program,
    card: Card,
    issue: Callable[[CertificateRequest], CertificateReply],
    trace: Trace | None = None,
) -> tuple[Any, Trace]:
    """Run the program on the card; returns (result, trace), result None if the card was torn."""
    trace = trace if trace is not None else Trace()
    assert card.contactless is not None
    transports = {
        Interface.CONTACT: _CardTransport(card.contact.transmit),
        Interface.CONTACTLESS: _CardTransport(card.contactless.transmit),
    }
    reply: Reply = None
    while True:
        try:
            request = program.send(reply)
        except StopIteration as stop:
            return stop.value, trace
        if isinstance(request, Checkpoint):
            trace.checkpoints.append((trace.apdus, request))
            reply = None
        elif isinstance(request, Batch):
            responses: list[bytes] = []
            for step in request.steps:
                try:
                    answer = _run_step(step, transports, trace)
                except TransportError:
                    program.close()
                    return None, trace
                responses.append(answer)
                trace.responses.append((step.label, answer))
                if int.from_bytes(answer[-2:], "big") not in step.expect:
                    break
            reply = tuple(responses)
        else:
            reply = issue(request)


def _run_step(step: Step, transports: Mapping[Interface, Any], trace: Trace) -> bytes:
    class Counting:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def transmit(self, apdu: bytes) -> bytes:
            trace.labels.append(step.label)
            answer: bytes = self.inner.transmit(apdu)
            return answer

    counted = {interface: Counting(t) for interface, t in transports.items()}
    (answer,) = run_batch(Batch(step.label, (step,)), counted)
    return answer
