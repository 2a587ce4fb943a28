"""The relay: identify the inserted card, claim its job, carry APDU batches until the session ends.

The server drives every command (DESIGN.md §5); the station only sends each step of a batch to the
named interface, follows ``61 xx`` with GET RESPONSE, stops after the first unexpected status word,
and posts the raw responses back. Steps marked sensitive (or whose instruction is) are logged by
header only: their data and responses never reach a log or the screen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cards.errors import CardError, ProgramError, TransportError
from cards.programs.base import holder_apdu
from cards.station_protocol import (
    BatchMessage,
    ClaimRequest,
    ExchangeRequest,
    ProtocolError,
    SessionState,
    batch_read,
    claim_request,
    exchange_answers,
    exchange_error,
)
from cards.transport import Transport, transmit_apdu

log = logging.getLogger("personalization_station.relay")

SELECT_EF_SN_ICC = bytes.fromhex("00A4080C02D003")
READ_EF_SN_ICC = bytes.fromhex("00B000000A")
GET_UID = bytes.fromhex("FFCA000000")
MAX_ROUND_TRIPS = 200


class Api(Protocol):
    """The CMS seen from the station: ``post(path, body) -> (status, json)``, the body one of
    the protocol's requests (``cards.station_protocol``)."""

    def post(
        self, path: str, body: ClaimRequest | ExchangeRequest | None = None
    ) -> tuple[int, dict[str, Any]]:
        """POST a JSON body to ``/api/v1/<path>``."""
        ...


class RelayError(Exception):
    """The server sent something the station cannot carry out (a malformed batch)."""


@dataclass
class CardLink:
    """A card in a reader: its ATR and a transport per interface.

    ``late_contactless`` connects the contactless interface when a batch first needs it and it
    was not seen at insertion (pcscd can report it well after the contact one): tried once, so
    that a card without one fails its step as before, after that one bounded wait.
    """

    atr: bytes
    contact: Transport
    contactless: Transport | None = None
    reader: str = ""
    late_contactless: Callable[[], Transport | None] | None = None

    def transport(self, interface: str) -> Transport:
        """The transport of ``contact`` or ``contactless``."""
        if interface == "contact":
            return self.contact
        if interface == "contactless" and self.contactless is None and self.late_contactless:
            connect, self.late_contactless = self.late_contactless, None
            self.contactless = connect()
            if self.contactless is not None:
                log.info("%s: contactless interface seen late, connected", self.reader)
        if interface == "contactless" and self.contactless is not None:
            return self.contactless
        raise TransportError(f"no {interface} reader for this card")


@dataclass(frozen=True)
class Identity:
    """Public facts read from the card before any claim."""

    atr: str
    chip_serial: str
    desfire_uid: str


@dataclass
class Outcome:
    """How the card's session ended, and what it cost."""

    state: str
    session: str = ""
    message: str = ""
    round_trips: int = 0
    apdus: int = 0
    chip_serial: str = ""


def identify(link: CardLink) -> Identity:
    """ATR, EF.SN.ICC (plain read from the MF) and the DESFire UID (PC/SC GET DATA)."""
    response = transmit_apdu(link.contact, SELECT_EF_SN_ICC, "SELECT EF.SN.ICC")
    if response.sw != 0x9000:
        raise CardError(f"SELECT EF.SN.ICC answered {response.sw:04X}: not a CPS card?")
    serial = transmit_apdu(link.contact, READ_EF_SN_ICC, "READ BINARY EF.SN.ICC")
    if serial.sw != 0x9000 or len(serial.data) != 10:
        raise CardError(f"READ BINARY EF.SN.ICC answered {serial.sw:04X}")
    uid = b""
    if link.contactless is not None:
        answer = transmit_apdu(link.contactless, GET_UID, "GET UID")
        if answer.sw == 0x9000:
            uid = answer.data
    return Identity(link.atr.hex().upper(), serial.data.hex().upper(), uid.hex().upper())


def run_batch(
    batch: BatchMessage | Mapping[str, Any], link: CardLink, *, holder_pin: bytes | None = None
) -> list[bytes]:
    """Send the steps in order; stop after the first unexpected status word. ``holder_pin``: the
    PIN the holder typed here, for the steps that ask for it (it never goes to the server)."""
    try:
        steps = batch_read(batch).steps
    except ProtocolError as exc:
        raise RelayError(str(exc)) from None
    out: list[bytes] = []
    for step in steps:
        try:
            command = holder_apdu(step, holder_pin)
        except ProgramError as exc:
            raise RelayError(str(exc)) from None
        response = transmit_apdu(link.transport(step.interface.value), command, step.label)
        if step.sensitive:
            log.debug("%s: %s [redacted] → %04X", step.label, step.apdu[:4].hex(), response.sw)
        else:
            log.debug("%s: %s → %s", step.label, step.apdu.hex(), response.encode().hex())
        out.append(response.encode())
        if response.sw not in step.expect:
            break
    return out


def _progress_line(payload: Mapping[str, Any]) -> str:
    progress = payload.get("progress") or {}
    done = len(progress.get("completed") or [])
    total = len(progress.get("phases") or []) or 1
    batch = payload.get("batch") or {}
    steps = len(batch.get("steps") or [])
    mode = progress.get("mode", "personalize")
    label = str(batch.get("label", ""))[:40]
    return f"{mode}: phases {done}/{total}, batch {payload.get('seq')} ({steps} APDUs) {label}"


def personalize(
    api: Api,
    link: CardLink,
    *,
    progress: Callable[[str], None] = lambda line: None,
) -> Outcome:
    """Identify the card, claim its job and relay until the session ends."""
    identity = identify(link)
    progress(f"card {identity.chip_serial} (ATR {identity.atr}, UID {identity.desfire_uid or '-'})")
    status, payload = api.post(
        "station/claim",
        claim_request(
            atr=identity.atr,
            chip_serial=identity.chip_serial,
            desfire_uid=identity.desfire_uid,
            reader=link.reader,
        ),
    )
    if status == 204:
        return Outcome("no_job", round_trips=1, chip_serial=identity.chip_serial)
    return _relay(api, link, payload, "station/sessions", identity=identity, progress=progress)


def _relay(
    api: Api,
    link: CardLink,
    payload: Mapping[str, Any],
    exchange: str,
    *,
    identity: Identity,
    progress: Callable[[str], None],
    pin: Callable[[], str] | None = None,
) -> Outcome:
    """Relay the batches of a server-driven program (``payload``: the claim's answer) until it
    ends, one round trip a batch, the card's loss reported as the batch's error. ``pin`` asks the
    holder for the PIN, once, when a batch first has a ``holder_pin`` step; it goes to the card
    only, never to the server."""
    session = str(payload.get("session", ""))
    round_trips, apdus = 1, 0
    typed: bytes | None = None
    while payload.get("state") == SessionState.RUNNING:
        if round_trips > MAX_ROUND_TRIPS:
            raise RelayError("the session does not end; giving up")
        progress(_progress_line(payload))
        seq = int(payload["seq"])
        steps = (payload.get("batch") or {}).get("steps") or []
        if pin is not None and typed is None and any(step.get("holder_pin") for step in steps):
            typed = pin().encode("ascii")
        try:
            responses = run_batch(payload["batch"], link, holder_pin=typed)
        except TransportError as exc:
            progress(f"card lost during batch {seq}: {exc}")
            _, payload = api.post(f"{exchange}/{session}/exchange", exchange_error(seq, str(exc)))
            round_trips += 1
            break
        apdus += len(responses)
        _, payload = api.post(f"{exchange}/{session}/exchange", exchange_answers(seq, responses))
        round_trips += 1
    return Outcome(
        state=str(payload.get("state", "unknown")),
        session=session,
        message=str(payload.get("message") or ""),
        round_trips=round_trips,
        apdus=apdus,
        chip_serial=identity.chip_serial,
    )


def renew(
    api: Api,
    link: CardLink,
    *,
    pin: Callable[[], str],
    progress: Callable[[str], None] = lambda line: None,
) -> Outcome:
    """Renew the certificates of the inserted card (an open renewal invitation, or a renewal to
    resume): relay until the renewal ends. ``pin`` asks the holder for the PIN, once, when a
    batch first needs it; it goes to the card only, never to the server."""
    identity = identify(link)
    progress(f"card {identity.chip_serial}: certificate renewal")
    status, payload = api.post("station/renewals", {"chip_serial": identity.chip_serial})
    if status == 204:
        return Outcome("no_renewal", round_trips=1, chip_serial=identity.chip_serial)
    return _relay(
        api, link, payload, "station/renewals", identity=identity, progress=progress, pin=pin
    )
