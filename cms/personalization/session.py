"""The server-side personalization session: runs the CPS4 program, one station round trip at a
time (DESIGN.md §5, docs/adr/0010-personalization-session-state.md).

The program (``cards.programs.cps4``) is a generator held in memory between round trips
(``live``); the session row keeps what a restart needs: the last checkpoint, the batch number in
flight, public inputs (validity dates, key versions) and the secrets sealed under the card key
store (``sealing``). Keys are re-derived, never stored (``inputs``). If a round trip reaches a
process that does not hold the generator (restart, another replica), the program is resumed from
the checkpoint: the station is simply handed a new batch.

Failures: a card answer the program refuses rolls the card back inside the same session (the
rollback program deletes what was written; once the chip lifecycle is closed the card is SPOILED),
then the request is failed and queued again (``endings``). A lost station or a removed card
interrupts the session: the job returns to the queue with its card, which is recognised by its
serial and resumed from its checkpoint when reinserted.

The modules of ``cms.personalization`` form layers (an import-linter contract in pyproject.toml):
``claims`` → ``session`` → ``endings`` | ``certificates`` → ``inputs`` | ``mailer`` → ``stations``
→ ``jobs`` → ``sealing`` | ``live`` | ``cpu`` → ``keys`` → ``choices``.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db import DatabaseError, InterfaceError, connection, transaction
from django.utils import timezone

from cards.errors import CardError, CardMismatch, RollbackImpossible
from cards.products import add_years
from cards.programs.base import Batch, CertificateRequest, Checkpoint
from cards.programs.cps4 import Cps4Result, RollbackResult, cps4_program, cps4_rollback
from cards.station_protocol import (
    Running,
    SessionAnswer,
    batch_message,
)
from cms.models import Card, PersonalizationJob, PersonalizationSession, Station
from cms.personalization import keys as card_keys
from cms.personalization.certificates import certificates_issue
from cms.personalization.choices import JobStatus, SessionMode, SessionStatus
from cms.personalization.cpu import cpu_start, cpu_take
from cms.personalization.endings import abort, commit, fail, outcome, progress
from cms.personalization.inputs import as_program_checkpoint, product_of, program_inputs
from cms.personalization.jobs import SYSTEM, CardIdentity, job_release, lease_duration
from cms.personalization.live import Live, batch_received, live_get, live_put, session_forget
from cms.personalization.sealing import secrets_new, secrets_seal
from cms.personalization.stations import station_check, station_for_account
from core.audit import AuditEntry, audit_event_create, audit_events_create
from core.errors import ApplicationError, Conflict, NotFound
from core.rows import joined_read, row_update
from core.sql import row_insert

log = logging.getLogger("cms.personalization")


# --- session start ----------------------------------------------------------------------------


# In the claim's transaction (no savepoint of its own: an error here rolls the claim back).
@transaction.atomic(savepoint=False)
def session_create(
    *, job: PersonalizationJob, station: Station, identity: CardIdentity
) -> PersonalizationSession:
    """The session row of a claimed job; a reclaimed job continues its last session's card
    state (checkpoint, sealed PIN/PUK, dates). ``job`` as the claim left it (its attempts
    counted; its card, when cached, with its product and holder: the request's start locked and
    read it)."""
    card = _card_of(job)
    product = product_of(card)
    # Sessions start only on claims: a job claimed for the first time has none to continue.
    previous = (
        PersonalizationSession.objects.filter(job=job)
        .exclude(status=SessionStatus.RUNNING)
        .order_by("-started_at")
        .first()
        if job.attempts > 1
        else None
    )
    if previous is not None and previous.sealed_secrets is not None:
        session = PersonalizationSession(
            job=job,
            station=station,
            card=card,
            mode=previous.mode,  # an interrupted rollback goes on rolling back
            error=previous.error,
            checkpoint=previous.checkpoint,
            phase=previous.phase,
            sealed_secrets=previous.sealed_secrets,
            valid_from=previous.valid_from,
            valid_until=previous.valid_until,
            key_versions=previous.key_versions,
            atr=identity.atr.upper(),
        )
    else:
        today = timezone.localdate()
        session = PersonalizationSession(
            job=job,
            station=station,
            card=card,
            sealed_secrets=secrets_seal(job.pk, secrets_new(product)),
            valid_from=today,
            valid_until=add_years(today, product.validity_years),
            key_versions=card_keys.KeyVersions.for_product(
                product, card.transport_key_version
            ).to_dict(),
            atr=identity.atr.upper(),
        )
    _session_insert(session)
    audit_event_create(
        actor=SYSTEM.actor,
        action="personalization.session_start",
        object_type="personalization_session",
        object_id=str(session.pk),
        details={
            "job_id": str(job.pk),
            "card_id": str(card.pk),
            "station": str(station.pk),
            "resumed_from": session.phase,
        },
    )
    return session


def _card_of(job: PersonalizationJob) -> Card:
    """The job's card with its product and holder: the one cached on the job if it has them,
    else read (by a statement built once: ``core.rows``)."""
    if PersonalizationJob.card.is_cached(job):
        card = job.card
        if Card.product.is_cached(card) and Card.holder.is_cached(card):
            return card
    found = joined_read(Card, ("product", "holder")).get(job.card_id)
    if not isinstance(found, Card):
        raise NotFound(f"No card {job.card_id}.")
    return found


def _session_insert(session: PersonalizationSession) -> None:
    """``save()``'s INSERT, built once from the model (``core.sql.row_insert``): a claim's CPU."""
    session.updated_at = timezone.now()  # auto_now, which only save() fills
    insert = row_insert(PersonalizationSession)
    with connection.cursor() as cursor:
        cursor.execute(insert.sql, insert.params(session))
    session._state.adding = False
    session._state.db = connection.alias


def session_begin(session: PersonalizationSession, card: Card | None = None) -> SessionAnswer:
    """Start (or resume) the session's program; the first batch for the station. The caller
    marked the start of the round trip's CPU (``cpu_start``)."""
    live = _live_start(session, card)
    with live.lock:
        return _advance(session, live, None)


def _live_start(session: PersonalizationSession, card: Card | None = None) -> Live:
    if card is None or card.pk != session.card_id:
        card = Card.objects.select_related("product", "holder").get(pk=session.card_id)
    inputs = program_inputs(session, card, bytes.fromhex(session.atr))
    checkpoint = Checkpoint.from_dict(session.checkpoint) if session.checkpoint else None
    if session.mode == SessionMode.ROLLBACK:
        assert checkpoint is not None
        program = cps4_rollback(inputs, as_program_checkpoint(checkpoint, inputs))
    else:
        program = cps4_program(inputs, resume=checkpoint)
    live = Live(program=program, mode=session.mode, inputs=inputs, seq=session.seq)
    live_put(session.pk, live)
    return live


def _running(session_id: UUID, *, with_station: bool = False) -> PersonalizationSession:
    """The session with its job (one query: the job's lease is checked from the same row) and,
    asked, its station; the statement built once (``core.rows``: the ORM's query building was
    the largest CPU cost of the round trip after the program)."""
    related = ("job", "station") if with_station else ("job",)
    session = joined_read(PersonalizationSession, related).get(session_id)
    if session is None:
        raise NotFound(f"No personalization session {session_id}.")
    assert isinstance(session, PersonalizationSession)
    return session


def _lease_check(session: PersonalizationSession, station: Station) -> None:
    """Refuse a round trip of a job the station no longer holds; renew the lease once less than
    half of it is left (a write per round trip would buy nothing: rounds are seconds apart)."""
    job = session.job
    if job.status != JobStatus.CLAIMED or job.station_id != station.pk:
        raise Conflict("The job's lease expired; claim the card again.")
    now = timezone.now()
    duration = lease_duration()
    if job.lease_expires_at is not None and job.lease_expires_at - now > duration / 2:
        return
    renewed = PersonalizationJob.objects.filter(
        pk=job.pk, station=station, status=JobStatus.CLAIMED
    ).update(lease_expires_at=now + duration)
    if not renewed:
        raise Conflict("The job's lease expired; claim the card again.")


# --- round trips --------------------------------------------------------------------------------


def session_exchange(
    *,
    session_id: UUID,
    station: Station,
    seq: int,
    responses: object = None,
    error: str | None = None,
) -> SessionAnswer:
    """Take the station's answers to batch ``seq``; return the next batch or the outcome."""
    cpu_start()
    session = _running(session_id)
    if session.station_id != station.pk:
        raise Conflict("This session belongs to another station.")
    return _exchange(session, station, seq, responses, error)


def session_exchange_for_account(
    *,
    session_id: UUID,
    account: User,
    seq: int,
    responses: object = None,
    error: str | None = None,
) -> SessionAnswer:
    """``session_exchange`` for the station behind a machine account, found with the session
    (one query for session, job and station on the API's busiest call)."""
    cpu_start()
    session = _running(session_id, with_station=True)
    station = session.station
    if station.account_id != account.pk:
        # Whose session it is stays unsaid unless the caller is an enrolled, active station.
        station_for_account(account)
        raise Conflict("This session belongs to another station.")
    station_check(station)
    return _exchange(session, station, seq, responses, error)


def _exchange(
    session: PersonalizationSession,
    station: Station,
    seq: int,
    responses: object,
    error: str | None,
) -> SessionAnswer:
    if session.status != SessionStatus.RUNNING:
        return outcome(session)
    _lease_check(session, station)
    if error:
        job_release(job_id=session.job_id, station=station, reason=f"station: {error[:200]}")
        return outcome(_running(session.pk))
    live = live_get(session.pk)
    if live is None or live.seq != session.seq:
        # This process does not hold the generator (restart or another replica), or holds a
        # stale one (another web process ran the later round trips): resume from the
        # checkpoint; the answers to the lost batch are not needed (the card's state since
        # the checkpoint is what the resumed program checks).
        return session_begin(session)
    with live.lock:
        reply = batch_received(live, seq, responses)
        if not isinstance(reply, tuple):
            return reply
        live.apdus += len(reply)
        try:
            return _advance(session, live, reply)
        except (DatabaseError, InterfaceError):
            # The database failed mid-step (a restart): the transaction is rolled back, but the
            # generator has moved on. Drop it; the station's retry resumes from the checkpoint.
            session_forget(session.pk)
            raise


def _advance(
    session: PersonalizationSession, live: Live, reply: tuple[bytes, ...] | None
) -> SessionAnswer:
    """Run the program until it needs the card again (a batch) or ends."""
    sent: Any = reply
    try:
        while True:
            request = live.program.send(sent)
            if isinstance(request, Batch):
                live.seq += 1
                live.batch = request
                session.batches += 1
                session.seq = live.seq
                _flush(session, live, batch=True)
                payload: Running = {
                    "session": str(session.pk),
                    "job": str(session.job_id),
                    "state": "running",
                    "seq": live.seq,
                    "batch": batch_message(request),
                    "progress": progress(session),
                }
                live.last_payload = payload
                return payload
            if isinstance(request, Checkpoint):
                if live.mode == SessionMode.PERSONALIZE:
                    session.checkpoint = request.to_dict()
                    session.phase = request.phase
                    live.pending.append(request)
                sent = None
            elif isinstance(request, CertificateRequest):
                _flush(session, live)  # the keys' checkpoint is durable before certificates
                sent = certificates_issue(session, request)
            else:  # pragma: no cover - the protocol has three requests
                raise CardError(f"unknown program request {type(request).__name__}")
    except StopIteration as stop:
        _flush(session, live)
        session_forget(session.pk)
        if isinstance(stop.value, Cps4Result):
            return commit(session, stop.value)
        if not isinstance(stop.value, RollbackResult):
            raise TypeError(f"program returned {type(stop.value).__name__}") from None
        return fail(session, spoiled=False, error=session.error or "rolled back")
    except CardMismatch as exc:
        _flush(session, live)
        session_forget(session.pk)
        return abort(session, str(exc))
    except RollbackImpossible as exc:
        _flush(session, live)
        session_forget(session.pk)
        return fail(session, spoiled=True, error=str(exc))
    except (CardError, ApplicationError) as exc:
        _flush(session, live)
        session_forget(session.pk)
        message = exc.message if isinstance(exc, ApplicationError) else str(exc)
        if live.mode == SessionMode.ROLLBACK:
            return fail(session, spoiled=True, error=f"rollback failed: {message}")
        return _rollback_start(session, message)


def _flush(session: PersonalizationSession, live: Live, *, batch: bool = False) -> None:
    """One UPDATE of the session row per round trip: the batch in flight, counters, server CPU
    and the checkpoints reached since the last write, each audited (one event per checkpoint, a
    phase, never per APDU) in the same transaction. Runs before the batch leaves, before
    certificates are issued and before any ending, so the stored resume point is never behind
    the card. A round trip that reached no checkpoint writes its one statement on its own (no
    transaction to open: nothing else is written with it)."""
    checkpoints = live.pending
    if not checkpoints and not batch:
        return
    names: tuple[str, ...] = ("updated_at",)
    values: list[Any] = [timezone.now()]
    if batch:
        names += ("seq", "batches")
        values += [session.seq, session.batches]
    if checkpoints:
        names += ("checkpoint", "phase")
        values += [session.checkpoint, session.phase]
    update = row_update(PersonalizationSession, names, ("apdus", "server_cpu_ms"))
    increments = [live.apdus, cpu_take()]
    if not checkpoints:
        update.execute(session.pk, values, increments)
    else:
        # No savepoint (ADR 0034): nothing inside raises an error any caller catches and goes on
        # from (a database error leaves ``_advance``, ``_exchange`` and the claim's block alike;
        # ``session_begin``'s caller in the claim catches ``ApplicationError`` only, which this
        # block cannot raise). Outside the claim's transaction it is a transaction of its own.
        with transaction.atomic(savepoint=False):
            update.execute(session.pk, values, increments)
            # One chain extension for the round trip's checkpoints (ADR 0028), one event each.
            audit_events_create(
                [
                    AuditEntry(
                        actor=SYSTEM.actor,
                        action="personalization.checkpoint",
                        object_type="personalization_session",
                        object_id=str(session.pk),
                        details={
                            "card_id": str(session.card_id),
                            "phase": checkpoint.phase,
                            "completed": len(checkpoint.completed),
                        },
                    )
                    for checkpoint in checkpoints
                ]
            )
    live.pending = []
    live.apdus = 0


def _rollback_start(session: PersonalizationSession, error: str) -> SessionAnswer:
    log.warning("personalization session %s failed: %s", session.pk, error)
    checkpoint = Checkpoint.from_dict(session.checkpoint) if session.checkpoint else None
    if checkpoint is None:
        return abort(session, error)
    if checkpoint.done("contact_closed"):
        return fail(session, spoiled=True, error=error)
    with transaction.atomic():
        locked = PersonalizationSession.objects.select_for_update().get(pk=session.pk)
        if locked.status != SessionStatus.RUNNING:
            return outcome(locked)  # interrupted or ended meanwhile: nothing to roll back here
        session.mode = SessionMode.ROLLBACK
        session.error = error[:500]
        PersonalizationSession.objects.filter(pk=session.pk).update(
            mode=session.mode, error=session.error
        )
        audit_event_create(
            actor=SYSTEM.actor,
            action="personalization.rollback_start",
            object_type="personalization_session",
            object_id=str(session.pk),
            details={
                "card_id": str(session.card_id),
                "phase": session.phase,
                "error": error[:200],
            },
        )
    live = _live_start(session)
    return _advance(session, live, None)
