"""New codes at a station (issue 14, item 4): the server-driven session that writes the PIN and PUK
of an open ``NewCodesRequest`` on its card, through the personalization relay, inside SCP03.

A station claims the inserted card as for a personalization (``station/claim``); an issued card
with a queued new-codes request gets a ``NewCodesSession`` whose first batch is the claim's answer,
and the station carries the batches of ``cards.programs.codes`` with ``station/sessions/<id>/
exchange`` exactly as it carries a personalization: it needs no change and learns nothing (the
codes travel encrypted in the secure channel and the steps are marked sensitive).

The codes were chosen and sealed when the request was filed (``codes_seal``): every session of the
request writes the same values, so a tear anywhere leaves the request queued (the session is
``interrupted``) and the next insertion runs the short program again. The card holds either its
old codes, or the new PIN with the old PUK (torn between the two writes), or the new codes; in each
case only the new ones are ever mailed, and only once the card proved it holds them (the new PIN
verifies inside the channel): then, in one transaction, the request is done and its sealed copy
dropped, the card's unprinted mailer is voided, the new mailer is queued, and it is all audited.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from cards.errors import CardError
from cards.programs.base import Batch, Checkpoint
from cards.programs.codes import PHASES, NewCodesInputs, NewCodesResult, new_codes_program
from cards.secret import Secret
from cards.station_protocol import (
    ClaimAnswer,
    Outcome,
    Running,
    SessionAnswer,
    batch_message,
)
from cms.choices import CardStatus
from cms.mailers.choices import MailerStatus
from cms.mailers.services import pin_mailer_queue
from cms.mailers.wording import LetterKind
from cms.models import (
    Card,
    NewCodesRequest,
    NewCodesSession,
    PersonalizationSession,
    PinMailer,
    Station,
    UnblockEvent,
)
from cms.personalization import keys as card_keys
from cms.personalization.choices import SessionStatus
from cms.personalization.jobs import SYSTEM, CardIdentity, lease_duration
from cms.personalization.live import LiveProgram, LiveRegistry, batch_received
from cms.personalization.stations import station_check, station_for_account
from core.audit import audit_event_create
from core.errors import ApplicationError, Conflict, NotFound

__all__ = [
    "SERVABLE",
    "Codes",
    "codes_claim",
    "codes_exchange_for_account",
    "codes_new",
    "codes_open",
    "codes_seal",
    "is_codes_session",
    "running_fresh",
]

log = logging.getLogger("cms.personalization.codes")

SERVABLE = (CardStatus.ISSUED, CardStatus.ACTIVE, CardStatus.SUSPENDED)
"""A card whose codes may be replaced: in the holder's hands (or on its way to them)."""
MODE = "new_codes"


# --- the sealed codes of a request -----------------------------------------------------------


@dataclass(frozen=True)
class Codes:
    pin: Secret
    puk: Secret


def _context(request_id: UUID) -> str:
    return f"new-codes:{request_id}"


def codes_new(product_pin_length: int, product_puk_length: int) -> Codes:
    """A random PIN and PUK of the product's lengths (as at issuance: ``sealing.secrets_new``)."""
    pin = "".join(secrets.choice("0123456789") for _ in range(product_pin_length))
    puk = "".join(secrets.choice("0123456789") for _ in range(product_puk_length))
    return Codes(Secret(pin), Secret(puk))


def codes_seal(request_id: UUID, codes: Codes) -> bytes:
    clear = json.dumps({"pin": codes.pin.reveal(), "puk": codes.puk.reveal()}).encode()
    return card_keys.seal(clear, context=_context(request_id))


def codes_open(request: NewCodesRequest) -> Codes:
    if request.sealed_secrets is None:
        raise Conflict("This request's codes were dropped (it is closed).")
    values = json.loads(
        card_keys.unseal(bytes(request.sealed_secrets), context=_context(request.pk))
    )
    return Codes(Secret(values["pin"]), Secret(values["puk"]))


# --- live programs ---------------------------------------------------------------------------


_LIVE: LiveRegistry[LiveProgram] = LiveRegistry()


def is_codes_session(session_id: UUID) -> bool:
    """Whether a station's session id names a new-codes session (else a personalization)."""
    if _LIVE.holds(session_id):
        return True
    return NewCodesSession.objects.filter(pk=session_id).exists()


# --- program inputs --------------------------------------------------------------------------


def _scp03_version(card: Card, default: int) -> int:
    """The issuer key version the card was personalized with (its last finished session)."""
    done = (
        PersonalizationSession.objects.filter(card=card, status=SessionStatus.DONE)
        .order_by("-ended_at")
        .values_list("key_versions", flat=True)
        .first()
    )
    return int(done["scp03"]) if done and "scp03" in done else default


def _inputs(request: NewCodesRequest, card: Card, atr: bytes) -> NewCodesInputs:
    from cms.personalization.inputs import product_of

    product = product_of(card)
    assert product.scp03 is not None
    serial = bytes.fromhex(card.chip_serial)
    version = _scp03_version(card, product.scp03.kvn)
    codes = codes_open(request)
    return NewCodesInputs(
        card_serial=serial,
        kdd=serial,
        atr=atr,
        scp03_keys=card_keys.scp03_keys_derive(product=product, version=version, kdd=serial),
        pin=codes.pin,
        puk=codes.puk,
        product=product,
    )


# --- claim -----------------------------------------------------------------------------------


def _progress(session: NewCodesSession, completed: list[str] | None = None) -> dict[str, Any]:
    return {"completed": completed or [], "phases": list(PHASES), "mode": MODE}


def _outcome(session: NewCodesSession) -> Outcome:
    done = list(PHASES) if session.status == NewCodesSession.Status.DONE else []
    return {
        "session": str(session.pk),
        "job": str(session.request_id),
        "state": session.status,
        "message": session.error,
        "card_id": str(session.request.card_id),
        "progress": _progress(session, done),  # type: ignore[typeddict-item]
    }


def codes_claim(*, station: Station, identity: CardIdentity) -> ClaimAnswer | None:
    """The new-codes session of the inserted card, if it has a queued request; its first batch.
    A session of the same request still marked running (a card pulled out, a lost station) is
    interrupted first: the request is served again from the start."""
    serial = identity.chip_serial.upper()
    with transaction.atomic():
        request = (
            NewCodesRequest.objects.select_for_update(of=("self",))
            .select_related("card")
            .filter(card__chip_serial=serial, status=NewCodesRequest.Status.QUEUED)
            .first()
        )
        if request is None:
            return None
        card = request.card
        if card.status not in SERVABLE:
            raise Conflict(
                f"Card {serial} is {card.status}: its codes can no longer be replaced.",
                extra={"card_status": card.status},
            )
        for stale in NewCodesSession.objects.select_for_update().filter(
            request=request, status=NewCodesSession.Status.RUNNING
        ):
            _LIVE.forget(stale.pk)
            _end(stale, NewCodesSession.Status.INTERRUPTED, "the card was presented again")
        session = NewCodesSession.objects.create(
            request=request, station=station, atr=identity.atr.upper()
        )
        audit_event_create(
            actor=SYSTEM.actor,
            action="new_codes.session_start",
            object_type="new_codes_session",
            object_id=str(session.pk),
            details={
                "request_id": str(request.pk),
                "card_id": str(card.pk),
                "station": str(station.pk),
                "reader": identity.reader,
            },
        )
    try:
        live = LiveProgram(
            program=new_codes_program(_inputs(request, card, bytes.fromhex(session.atr)))
        )
    except (ApplicationError, ValueError) as exc:
        message = exc.message if isinstance(exc, ApplicationError) else str(exc)
        _end(session, NewCodesSession.Status.ABORTED, message)
        return _outcome(session)
    _LIVE.put(session.pk, live)
    with live.lock:
        return _advance(session, live, None)


# --- round trips -----------------------------------------------------------------------------


def codes_exchange_for_account(
    *, session_id: UUID, account: User, seq: int, responses: object = None, error: str | None = None
) -> SessionAnswer:
    """The station's answers to batch ``seq`` of a new-codes session: the next batch or the end."""
    try:
        session = NewCodesSession.objects.select_related("station", "request").get(pk=session_id)
    except NewCodesSession.DoesNotExist:
        raise NotFound(f"No session {session_id}.") from None
    if session.station.account_id != account.pk:
        station_for_account(account)
        raise Conflict("This session belongs to another station.")
    station_check(session.station)
    if session.status != NewCodesSession.Status.RUNNING:
        return _outcome(session)
    if error:
        _LIVE.forget(session.pk)
        _end(session, NewCodesSession.Status.INTERRUPTED, f"station: {error[:200]}")
        return _outcome(session)
    if session.request.status != NewCodesRequest.Status.QUEUED:
        _LIVE.forget(session.pk)
        _end(session, NewCodesSession.Status.ABORTED, "the request was closed meanwhile")
        return _outcome(session)
    live = _LIVE.get(session.pk)
    if live is None:
        # Another process ran the earlier round trips (or this one restarted): the program is
        # idempotent, so it starts over on the card, from a fresh secure channel.
        card = Card.objects.select_related("product").get(pk=session.request.card_id)
        live = LiveProgram(
            program=new_codes_program(_inputs(session.request, card, bytes.fromhex(session.atr))),
            seq=session.seq,
        )
        _LIVE.put(session.pk, live)
        with live.lock:
            return _advance(session, live, None)
    with live.lock:
        reply = batch_received(live, seq, responses)
        if not isinstance(reply, tuple):
            return reply
        NewCodesSession.objects.filter(pk=session.pk).update(apdus=session.apdus + len(reply))
        session.apdus += len(reply)
        return _advance(session, live, reply)


def _advance(
    session: NewCodesSession, live: LiveProgram, reply: tuple[bytes, ...] | None
) -> SessionAnswer:
    sent: Any = reply
    try:
        while True:
            request = live.program.send(sent)
            if isinstance(request, Batch):
                live.seq += 1
                live.batch = request
                session.seq = live.seq
                session.batches += 1
                NewCodesSession.objects.filter(pk=session.pk).update(
                    seq=session.seq, batches=session.batches
                )
                payload: Running = {
                    "session": str(session.pk),
                    "job": str(session.request_id),
                    "state": "running",
                    "seq": live.seq,
                    "batch": batch_message(request),
                    "progress": _progress(session),  # type: ignore[typeddict-item]
                }
                live.last_payload = payload
                return payload
            if isinstance(request, Checkpoint):
                sent = None  # informative: the program starts over when served again
                continue
            raise CardError(f"unexpected program request {type(request).__name__}")
    except StopIteration as stop:
        _LIVE.forget(session.pk)
        result = stop.value
        if not isinstance(result, NewCodesResult):
            raise TypeError(f"program returned {type(result).__name__}") from None
        _commit(session, result)
        return _outcome(session)
    except (CardError, ApplicationError) as exc:
        _LIVE.forget(session.pk)
        message = exc.message if isinstance(exc, ApplicationError) else str(exc)
        log.warning("new-codes session %s refused: %s", session.pk, message)
        _end(session, NewCodesSession.Status.ABORTED, message)
        return _outcome(session)


def _end(session: NewCodesSession, status: str, error: str = "") -> None:
    with transaction.atomic():
        session.status = status
        session.error = error[:500]
        session.ended_at = timezone.now()
        NewCodesSession.objects.filter(pk=session.pk).update(
            status=status, error=session.error, ended_at=session.ended_at
        )
        audit_event_create(
            actor=SYSTEM.actor,
            action=f"new_codes.session_{status}",
            object_type="new_codes_session",
            object_id=str(session.pk),
            details={"request_id": str(session.request_id), "error": error[:200]},
        )


def _void_unprinted(card: Card, request: NewCodesRequest) -> list[str]:
    """Void the card's mailers still waiting for a print run: their codes are dead."""
    voided = []
    for mailer in PinMailer.objects.select_for_update().filter(
        card=card, status=MailerStatus.QUEUED
    ):
        mailer.status = MailerStatus.VOIDED
        mailer.sealed_secrets = None
        mailer.save(update_fields=["status", "sealed_secrets"])
        audit_event_create(
            actor=SYSTEM.actor,
            action="pin_mailer.void",
            object_type="pin_mailer",
            object_id=str(mailer.pk),
            details={
                "reference": mailer.reference,
                "card_id": str(card.pk),
                "new_codes_request": str(request.pk),
            },
        )
        voided.append(mailer.reference)
    return voided


def _commit(session: NewCodesSession, result: NewCodesResult) -> None:
    """The card holds the new codes: close the request, mail them, record it, in one
    transaction."""
    with transaction.atomic():
        request = (
            NewCodesRequest.objects.select_for_update(of=("self",))
            .select_related("card__pool")
            .get(pk=session.request_id)
        )
        card = request.card
        codes = codes_open(request)
        voided = _void_unprinted(card, request)
        mailer = pin_mailer_queue(
            card=card, kind=LetterKind.NEW_CODES, pin=codes.pin, puk=codes.puk, site=card.pool
        )
        now = timezone.now()
        request.status = NewCodesRequest.Status.DONE
        request.sealed_secrets = None
        request.mailer = mailer
        request.pin_tries_left = result.pin_tries_left
        request.puk_tries_left = result.puk_tries_left
        request.done_at = now
        request.save(
            update_fields=[
                "status",
                "sealed_secrets",
                "mailer",
                "pin_tries_left",
                "puk_tries_left",
                "done_at",
            ]
        )
        Card.objects.filter(pk=card.pk).update(
            pin_tries_left=result.pin_tries_left,
            puk_tries_left=result.puk_tries_left,
            pin_status_at=now,
        )
        event = UnblockEvent.objects.create(
            card=card,
            kind=UnblockEvent.Kind.NEW_CODES,
            agent_id=request.agent_id,
            identity_method=request.identity_method,
            identity_reference=request.identity_reference,
            outcome="written",
            pin_tries_left=result.pin_tries_left,
            puk_tries_left=result.puk_tries_left,
            approval=None,
        )
        session.status = NewCodesSession.Status.DONE
        session.ended_at = now
        NewCodesSession.objects.filter(pk=session.pk).update(status=session.status, ended_at=now)
        audit_event_create(
            actor=SYSTEM.actor,
            action="card.new_codes_written",
            object_type="card",
            object_id=str(card.pk),
            details={
                "request_id": str(request.pk),
                "session_id": str(session.pk),
                "station": str(session.station_id),
                "event_id": event.pk,
                "mailer": mailer.reference,
                "voided_mailers": voided,
                "pin_tries_left": result.pin_tries_left,
                "puk_tries_left": result.puk_tries_left,
            },
        )


def running_fresh(request: NewCodesRequest) -> bool:
    """Whether a station may be writing this request's codes right now (a session started
    within the station lease)."""
    since = timezone.now() - lease_duration()
    return NewCodesSession.objects.filter(
        request=request, status=NewCodesSession.Status.RUNNING, started_at__gte=since
    ).exists()
