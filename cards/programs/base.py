"""The sans-I/O personalization program protocol, and a runner over transports.

A program is a generator. It yields requests and receives replies:

- ``Batch``: send these APDUs in order. Reply: ``tuple[bytes, ...]``, the raw responses in order,
  stopping after the first whose SW is not in its step's ``expect``.
- ``Checkpoint``: a phase is complete and verified; persist it (to resume or roll back). Reply:
  ``None``.
- ``CertificateRequest``: issue certificates for these public keys. Reply: ``CertificateReply``.

The program finally returns its result (``StopIteration.value``). It never touches a socket: the
server runs it inside a personalization session and the station carries each ``Batch`` to the card
(``61 xx`` answers are followed with GET RESPONSE by whoever holds the reader, see
``cards.transport.transmit_apdu``). ``run_program`` is that loop for in-process transports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from cards.apdu import ResponseApdu
from cards.errors import CheckpointError, ProgramError
from cards.iso7816 import RsaPublicKey
from cards.transport import Transport, transmit_apdu

__all__ = [
    "Batch",
    "CertificateReply",
    "CertificateRequest",
    "Checkpoint",
    "Interface",
    "Program",
    "Reply",
    "Request",
    "RunStats",
    "Step",
    "holder_apdu",
    "run_program",
]

log = logging.getLogger("cards.programs")


class Interface(Enum):
    """Which reader interface a step goes to: a dual-interface card shows as two readers."""

    CONTACT = "contact"
    CONTACTLESS = "contactless"


@dataclass(frozen=True, slots=True)
class Step:
    """One command APDU, the status words that let the batch continue, and a label for errors."""

    label: str
    apdu: bytes = field(repr=False)
    expect: tuple[int, ...] = (0x9000,)
    sensitive: bool = False
    """Its data (and response) must never be logged, even though it travels protected."""
    interface: Interface = Interface.CONTACT
    holder_pin: bool = False
    """A VERIFY whose data is the holder's PIN, typed at the station and filled in by it
    (``holder_apdu``): the server that built the batch never sees the PIN."""

    def __repr__(self) -> str:
        shown = self.apdu[:4].hex().upper() + (
            "…" if self.sensitive else self.apdu[4:].hex().upper()
        )
        return f"Step({self.label!r}, {shown}, {self.interface.value})"


@dataclass(frozen=True, slots=True)
class Batch:
    """Commands the station sends in one round trip, in order (on the wire:
    ``cards.station_protocol.batch_message``)."""

    label: str
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The card's state after the last completed phase, persisted by the server session.

    ``completed`` lists every completed phase; ``last_step`` names the last step of the last one;
    ``state`` records facts a resumed or rolled-back session needs (which keys are in force).
    """

    program: str
    product: str
    product_version: int
    completed: tuple[str, ...]
    last_step: str
    state: Mapping[str, str] = field(default_factory=dict)

    @property
    def phase(self) -> str:
        """The last completed phase."""
        return self.completed[-1] if self.completed else ""

    def done(self, phase: str) -> bool:
        """True if ``phase`` is complete."""
        return phase in self.completed

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the session row."""
        return {
            "program": self.program,
            "product": self.product,
            "product_version": self.product_version,
            "completed": list(self.completed),
            "last_step": self.last_step,
            "state": dict(self.state),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        """Inverse of ``to_dict``; CheckpointError if fields are missing or mistyped."""
        try:
            checkpoint = cls(
                program=str(data["program"]),
                product=str(data["product"]),
                product_version=int(data["product_version"]),
                completed=tuple(str(p) for p in data["completed"]),
                last_step=str(data["last_step"]),
                state={str(k): str(v) for k, v in dict(data.get("state", {})).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"malformed checkpoint: {exc}") from exc
        return checkpoint


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    """Public keys read from the card inside the authenticated channel, to be certified.

    ``public_keys`` maps a key slot name (``auth``, ``sign``) to its key; ``profiles`` maps the
    same names to the certificate profile to use (``cps_auth``, ``cps_sign``).
    """

    card_serial: bytes
    public_keys: Mapping[str, RsaPublicKey]
    profiles: Mapping[str, str]

    def spki_der(self, slot: str) -> bytes:
        """The DER SubjectPublicKeyInfo of a slot's key (for a CSR-less certificate build)."""
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        key = self.public_keys[slot]
        public = RSAPublicNumbers(key.exponent, key.modulus).public_key()
        return public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True, slots=True)
class CertificateReply:
    """The server's answer: one DER certificate per key slot name."""

    certificates: Mapping[str, bytes]


def holder_apdu(step: Step, pin: bytes | None) -> bytes:
    """The APDU to send for a step: a ``holder_pin`` step gets the holder's PIN as its data."""
    if not step.holder_pin:
        return step.apdu
    if not pin or len(pin) > 255:
        raise ProgramError(f"{step.label}: the holder's PIN is needed at this station")
    return step.apdu[:4] + bytes([len(pin)]) + pin


Request = Batch | Checkpoint | CertificateRequest
Reply = tuple[bytes, ...] | CertificateReply | None
Program = Generator[Request, Reply, Any]


@dataclass(slots=True)
class RunStats:
    """What a run cost: round trips (batches), APDUs (with GET RESPONSEs), checkpoints."""

    batches: int = 0
    apdus: int = 0
    checkpoints: list[Checkpoint] = field(default_factory=list)


class _CountingTransport:
    def __init__(self, inner: Transport, stats: RunStats) -> None:
        self._inner = inner
        self._stats = stats

    def transmit(self, apdu: bytes) -> bytes:
        self._stats.apdus += 1
        return self._inner.transmit(apdu)


def run_batch(
    batch: Batch,
    transports: Mapping[Interface, Transport],
    stats: RunStats | None = None,
    *,
    holder_pin: bytes | None = None,
) -> tuple[bytes, ...]:
    """Send a batch's steps in order (following ``61 xx``); stop after an unexpected status word.
    ``holder_pin``: the PIN the holder typed, for ``holder_pin`` steps."""
    stats = stats if stats is not None else RunStats()
    out: list[bytes] = []
    for step in batch.steps:
        transport = transports.get(step.interface)
        if transport is None:
            raise ProgramError(f"{step.label}: no {step.interface.value} reader")
        counted = _CountingTransport(transport, stats)
        command = holder_apdu(step, holder_pin)
        response: ResponseApdu = transmit_apdu(counted, command, step.label)
        if step.sensitive:
            log.debug("%s: %s … → SW %04X", step.label, step.apdu[:4].hex().upper(), response.sw)
        else:
            log.debug(
                "%s: %s → %s", step.label, step.apdu.hex().upper(), response.encode().hex().upper()
            )
        out.append(response.encode())
        if response.sw not in step.expect:
            break
    return tuple(out)


def run_program(
    program: Program,
    transports: Mapping[Interface, Transport] | Transport,
    *,
    issue_certificates: Callable[[CertificateRequest], CertificateReply] | None = None,
    on_checkpoint: Callable[[Checkpoint], None] | None = None,
    stats: RunStats | None = None,
) -> Any:
    """Drive a program to completion over in-process transports; return its result."""
    if not isinstance(transports, Mapping):
        transports = {Interface.CONTACT: transports}
    stats = stats if stats is not None else RunStats()
    reply: Reply = None
    try:
        while True:
            request = program.send(reply)
            if isinstance(request, Batch):
                stats.batches += 1
                reply = run_batch(request, transports, stats)
            elif isinstance(request, Checkpoint):
                stats.checkpoints.append(request)
                if on_checkpoint is not None:
                    on_checkpoint(request)
                reply = None
            else:
                if issue_certificates is None:
                    raise ProgramError("the program asks for certificates but no issuer was given")
                reply = issue_certificates(request)
    except StopIteration as stop:
        return stop.value
