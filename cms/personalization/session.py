"""The server-side personalization session: runs the CPS4 program, one station round trip at a
time (DESIGN.md §5).

The program (``cards.programs.cps4``) is a generator; the web process keeps the live generator in
memory between round trips (``_LIVE``) and persists what a restart needs on the session row: the
last checkpoint, the batch number in flight, public inputs (validity dates, key versions) and the
PIN, PUK and contactless access credential sealed under the card key store. Keys are
re-derived, never stored. If
a round trip reaches a process that does not hold the generator (restart, another replica), the
program is resumed from the checkpoint: the station is simply handed a new batch.

Failures: a card answer the program refuses rolls the card back inside the same session (the
rollback program deletes what was written; once the chip lifecycle is closed the card is SPOILED),
then the request is failed (certificates revoked by the lifecycle effects) and queued again. A
lost station or a removed card interrupts the session: the job returns to the queue with its card,
which is recognised by its serial and resumed from its checkpoint when reinserted.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from cards.errors import CardError, CardMismatch, RollbackImpossible
from cards.products import Product, card_number, get_product
from cards.programs.base import (
    Batch,
    CertificateReply,
    CertificateRequest,
    Checkpoint,
    Program,
)
from cards.programs.cps4 import (
    PHASES,
    PROGRAM,
    Cps4Inputs,
    Cps4Result,
    Identity,
    RollbackResult,
    Secret,
    StockRecord,
    cps4_program,
    cps4_rollback,
)
from cms.choices import Profession
from cms.models import (
    Card,
    CardCertificate,
    CardRequest,
    PersonalizationJob,
    PersonalizationSession,
    Station,
)
from cms.personalization import keys as card_keys
from cms.personalization.choices import JobStatus, SessionMode, SessionStatus
from cms.personalization.jobs import SYSTEM, CardIdentity, lease_duration
from cms.personalization.stations import station_check, station_for_account
from cms.services.requests import request_complete, request_fail, request_queue
from core.audit import audit_event_create
from core.errors import ApplicationError, BadInput, Conflict, NotFound
from pki import services as pki_services
from pki.domain.names import Holder as PkiHolder
from pki.domain.reasons import RevocationReason
from pki.models import CertificateAuthority
from pki.selectors import authority_list

log = logging.getLogger("cms.personalization")

MAX_RESPONSE_BYTES = 4096


@dataclass
class _Live:
    program: Program
    mode: str
    inputs: Cps4Inputs
    seq: int = 0
    batch: Batch | None = None
    last_payload: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Written with the next session UPDATE (one per round trip, see ``_flush``).
    pending: list[Checkpoint] = field(default_factory=list)
    apdus: int = 0


_LIVE: dict[UUID, _Live] = {}
_LIVE_LOCK = threading.Lock()
_CPU = threading.local()


def _cpu_start() -> None:
    _CPU.mark = time.thread_time()


def _cpu_take() -> float:
    """Thread CPU (ms) spent since the last mark, which moves to now: server CPU is accounted on
    the writes a round trip makes anyway instead of an UPDATE of its own."""
    now = time.thread_time()
    mark = float(getattr(_CPU, "mark", now))
    _CPU.mark = now
    return (now - mark) * 1000


def session_forget(session_id: UUID) -> None:
    """Drop the in-memory generator of a session (ended or interrupted)."""
    with _LIVE_LOCK:
        live = _LIVE.pop(session_id, None)
    if live is not None:
        live.program.close()


# --- inputs -------------------------------------------------------------------------------------


def _product(card: Card) -> Product:
    return get_product(card.product.name, int(card.product.version))


def _secrets_context(job_id: UUID) -> str:
    return f"session-secrets:{job_id}"


def _new_secrets(product: Product) -> tuple[Secret, Secret]:
    assert product.puk is not None
    pin = "".join(secrets.choice("0123456789") for _ in range(product.pin.min_length))
    puk = "".join(secrets.choice("0123456789") for _ in range(product.puk.min_length))
    return Secret(pin), Secret(puk)


@dataclass(frozen=True)
class _Sealed:
    """What a session keeps sealed: PIN, PUK and the contactless access credential (the
    FULL-mode DESFire file a door reader checks: as secret as the PIN)."""

    pin: Secret
    puk: Secret
    access_credential: bytes = field(repr=False)


def _open_secrets(session: PersonalizationSession) -> _Sealed:
    if session.sealed_secrets is None:
        raise Conflict("The session's PIN and PUK were dropped; it cannot continue.")
    clear = card_keys.unseal(
        bytes(session.sealed_secrets), context=_secrets_context(session.job_id)
    )
    values = json.loads(clear)
    return _Sealed(Secret(values["pin"]), Secret(values["puk"]), bytes.fromhex(values["access"]))


def _seal_secrets(job_id: UUID, sealed: _Sealed) -> bytes:
    clear = json.dumps(
        {
            "pin": sealed.pin.reveal(),
            "puk": sealed.puk.reveal(),
            "access": sealed.access_credential.hex(),
        }
    ).encode()
    return card_keys.seal(clear, context=_secrets_context(job_id))


def _inputs(session: PersonalizationSession, card: Card, atr: bytes) -> Cps4Inputs:
    product = _product(card)
    serial = bytes.fromhex(card.chip_serial)
    uid = bytes.fromhex(card.desfire_uid or "")
    versions = card_keys.KeyVersions.from_dict(session.key_versions)
    keys = card_keys.card_keys_derive(
        product=product, versions=versions, kdd=serial, serial=serial, uid=uid
    )
    sealed = _open_secrets(session)
    assert card.holder is not None
    checkpoint = Checkpoint.from_dict(session.checkpoint) if session.checkpoint else None
    written = checkpoint is not None and checkpoint.done("contact_keys_certificates")
    certificates = (
        {
            link.slot: bytes(link.certificate.der)
            for link in CardCertificate.objects.filter(card=card).select_related("certificate")
        }
        if written
        else {}
    )
    return Cps4Inputs(
        stock=StockRecord(card_serial=serial, kdd=serial, desfire_uid=uid, atr=atr),
        identity=Identity(
            card_number=card_number(serial),
            national_id=card.holder.national_id,
            valid_from=session.valid_from,
            valid_until=session.valid_until,
        ),
        scp03_keys=keys.scp03,
        desfire_transport_key=keys.transport,
        desfire_picc_key=keys.picc,
        desfire_app_keys=keys.app,
        admin_key=keys.admin,
        pin=sealed.pin,
        puk=sealed.puk,
        access_credential=sealed.access_credential,
        certificates=certificates if written else None,
        product=product,
    )


# --- session start ----------------------------------------------------------------------------


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@transaction.atomic
def session_create(
    *, job: PersonalizationJob, station: Station, identity: CardIdentity
) -> PersonalizationSession:
    """The session row of a claimed job; a reclaimed job continues its last session's card
    state (checkpoint, sealed PIN/PUK, dates)."""
    card = Card.objects.select_related("product", "holder").get(pk=job.card_id)
    product = _product(card)
    previous = (
        PersonalizationSession.objects.filter(job=job)
        .exclude(status=SessionStatus.RUNNING)
        .order_by("-started_at")
        .first()
    )
    if previous is not None and previous.sealed_secrets is not None:
        session = PersonalizationSession.objects.create(
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
        pin, puk = _new_secrets(product)
        today = timezone.localdate()
        session = PersonalizationSession.objects.create(
            job=job,
            station=station,
            card=card,
            sealed_secrets=_seal_secrets(job.pk, _Sealed(pin, puk, secrets.token_bytes(16))),
            valid_from=today,
            valid_until=_add_years(today, product.validity_years),
            key_versions=card_keys.KeyVersions.for_product(
                product, card.transport_key_version
            ).to_dict(),
            atr=identity.atr.upper(),
        )
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


def session_begin(*, session_id: UUID) -> dict[str, Any]:
    """Start the program and return the first batch for the station."""
    _cpu_start()
    return _begin(_running(session_id))


def _begin(session: PersonalizationSession, card: Card | None = None) -> dict[str, Any]:
    live = _live_start(session, card)
    with live.lock:
        return _advance(session, live, None)


def _live_start(session: PersonalizationSession, card: Card | None = None) -> _Live:
    if card is None or card.pk != session.card_id:
        card = Card.objects.select_related("product", "holder").get(pk=session.card_id)
    inputs = _inputs(session, card, bytes.fromhex(session.atr))
    checkpoint = Checkpoint.from_dict(session.checkpoint) if session.checkpoint else None
    if session.mode == SessionMode.ROLLBACK:
        assert checkpoint is not None
        program = cps4_rollback(inputs, _as_program_checkpoint(checkpoint, inputs))
    else:
        program = cps4_program(inputs, resume=checkpoint)
    live = _Live(program=program, mode=session.mode, inputs=inputs, seq=session.seq)
    with _LIVE_LOCK:
        old = _LIVE.pop(session.pk, None)
        _LIVE[session.pk] = live
    if old is not None:
        old.program.close()
    return live


def _as_program_checkpoint(checkpoint: Checkpoint, inputs: Cps4Inputs) -> Checkpoint:
    if checkpoint.program == PROGRAM:
        return checkpoint
    return Checkpoint(
        program=PROGRAM,
        product=inputs.product.name,
        product_version=inputs.product.version,
        completed=checkpoint.completed,
        last_step=checkpoint.last_step,
        state=checkpoint.state,
    )


def _running(session_id: UUID, *, with_station: bool = False) -> PersonalizationSession:
    """The session with its job (one query: the job's lease is checked from the same row)."""
    related = ("job", "station") if with_station else ("job",)
    try:
        return PersonalizationSession.objects.select_related(*related).get(pk=session_id)
    except PersonalizationSession.DoesNotExist:
        raise NotFound(f"No personalization session {session_id}.") from None


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


def _decode_responses(raw: object, batch: Batch) -> tuple[bytes, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= len(batch.steps):
        raise BadInput(f"Send one response per command run (1 to {len(batch.steps)}).")
    out = []
    for item in raw:
        if not isinstance(item, str) or len(item) > 2 * MAX_RESPONSE_BYTES:
            raise BadInput("Each response is a hex string of at most 4096 bytes.")
        try:
            value = bytes.fromhex(item)
        except ValueError:
            raise BadInput("A response is not hex.") from None
        if len(value) < 2:
            raise BadInput("A response carries at least the status word.")
        out.append(value)
    return tuple(out)


def session_exchange(
    *,
    session_id: UUID,
    station: Station,
    seq: int,
    responses: object = None,
    error: str | None = None,
) -> dict[str, Any]:
    """Take the station's answers to batch ``seq``; return the next batch or the outcome."""
    _cpu_start()
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
) -> dict[str, Any]:
    """``session_exchange`` for the station behind a machine account, found with the session
    (one query for session, job and station on the API's busiest call)."""
    _cpu_start()
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
) -> dict[str, Any]:
    if session.status != SessionStatus.RUNNING:
        return _outcome(session)
    _lease_check(session, station)
    if error:
        from cms.personalization.jobs import job_release

        job_release(job_id=session.job_id, station=station, reason=f"station: {error[:200]}")
        return _outcome(_running(session.pk))
    with _LIVE_LOCK:
        live = _LIVE.get(session.pk)
    if live is None or live.seq != session.seq:
        # This process does not hold the generator (restart or another replica), or holds a
        # stale one (another web process ran the later round trips): resume from the
        # checkpoint; the answers to the lost batch are not needed (the card's state since
        # the checkpoint is what the resumed program checks).
        return _begin(session)
    with live.lock:
        if seq == live.seq - 1 and live.last_payload:
            return live.last_payload  # the station lost our answer and sent its batch again
        if seq != live.seq or live.batch is None:
            raise Conflict(
                f"Batch {seq} is not the batch in flight ({live.seq}).",
                extra={"expected_seq": live.seq},
            )
        reply = _decode_responses(responses, live.batch)
        live.apdus += len(reply)
        return _advance(session, live, reply)


def _progress(session: PersonalizationSession) -> dict[str, Any]:
    completed = list((session.checkpoint or {}).get("completed", []))
    return {"completed": completed, "phases": list(PHASES), "mode": session.mode}


def _advance(
    session: PersonalizationSession, live: _Live, reply: tuple[bytes, ...] | None
) -> dict[str, Any]:
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
                payload = {
                    "session": str(session.pk),
                    "job": str(session.job_id),
                    "state": "running",
                    "seq": live.seq,
                    "batch": request.to_dict(),
                    "progress": _progress(session),
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
                sent = _certificates_issue(session, request)
            else:  # pragma: no cover - the protocol has three requests
                raise CardError(f"unknown program request {type(request).__name__}")
    except StopIteration as stop:
        _flush(session, live)
        session_forget(session.pk)
        if isinstance(stop.value, Cps4Result):
            return _commit(session, stop.value)
        if not isinstance(stop.value, RollbackResult):
            raise TypeError(f"program returned {type(stop.value).__name__}") from None
        return _fail(session, spoiled=False, error=session.error or "rolled back")
    except CardMismatch as exc:
        _flush(session, live)
        session_forget(session.pk)
        return _abort(session, str(exc))
    except RollbackImpossible as exc:
        _flush(session, live)
        session_forget(session.pk)
        return _fail(session, spoiled=True, error=str(exc))
    except (CardError, ApplicationError) as exc:
        _flush(session, live)
        session_forget(session.pk)
        message = exc.message if isinstance(exc, ApplicationError) else str(exc)
        if live.mode == SessionMode.ROLLBACK:
            return _fail(session, spoiled=True, error=f"rollback failed: {message}")
        return _rollback_start(session, message)


def _flush(session: PersonalizationSession, live: _Live, *, batch: bool = False) -> None:
    """One UPDATE of the session row per round trip: the batch in flight, counters, server CPU
    and the checkpoints reached since the last write, each audited (one event per checkpoint, a
    phase, never per APDU) in the same transaction. Runs before the batch leaves, before
    certificates are issued and before any ending, so the stored resume point is never behind
    the card."""
    checkpoints = live.pending
    if not checkpoints and not batch:
        return
    fields: dict[str, Any] = {
        "apdus": F("apdus") + live.apdus,
        "server_cpu_ms": F("server_cpu_ms") + _cpu_take(),
        "updated_at": timezone.now(),
    }
    if batch:
        fields.update(seq=session.seq, batches=session.batches)
    if checkpoints:
        fields.update(checkpoint=session.checkpoint, phase=session.phase)
    with transaction.atomic():
        PersonalizationSession.objects.filter(pk=session.pk).update(**fields)
        for checkpoint in checkpoints:
            audit_event_create(
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
    live.pending = []
    live.apdus = 0


def _rollback_start(session: PersonalizationSession, error: str) -> dict[str, Any]:
    log.warning("personalization session %s failed: %s", session.pk, error)
    checkpoint = Checkpoint.from_dict(session.checkpoint) if session.checkpoint else None
    if checkpoint is None:
        return _abort(session, error)
    if checkpoint.done("contact_closed"):
        return _fail(session, spoiled=True, error=error)
    with transaction.atomic():
        locked = PersonalizationSession.objects.select_for_update().get(pk=session.pk)
        if locked.status != SessionStatus.RUNNING:
            return _outcome(locked)  # interrupted or ended meanwhile: nothing to roll back here
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


# --- certificates -------------------------------------------------------------------------------


def _authority_for(profile: str, authorities: Iterable[CertificateAuthority]) -> str:
    for ca in authorities:
        if profile in (ca.profiles or []) and ca.kind == "issuing":
            return str(ca.short_name)
    raise Conflict(f"No issuing authority issues the {profile} profile; run pki_init.")


def _pki_holder(card: Card, serial: bytes) -> PkiHolder:
    holder = card.holder
    assert holder is not None
    try:
        title = str(Profession(holder.profession).label)
        code = int(holder.profession)
    except ValueError:
        title, code = holder.profession, None
    return PkiHolder(
        national_id=holder.national_id,
        surname=holder.last_name.upper(),
        given_name=holder.first_name.upper(),
        title=title,
        card_serial=card_number(serial),
        profession_code=code,
        # The registry holds no e-mail address yet: the signature profile needs one, so the
        # holder's national id at a configured (MSSanté-like) domain stands in for it.
        email=f"{holder.national_id}@{_email_domain()}",
    )


def _email_domain() -> str:
    from django.conf import settings

    return str(settings.PERSONALIZATION_EMAIL_DOMAIN)


@transaction.atomic
def _certificates_issue(
    session: PersonalizationSession, request: CertificateRequest
) -> CertificateReply:
    """Issue the card's certificates on hold and link them; earlier certificates of the card
    (an interrupted run that generated keys again) are revoked first."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    card = (
        Card.objects.select_for_update(of=("self",))
        .select_related("holder")
        .get(pk=session.card_id)
    )
    unlinked: dict[str, int] = {}
    for link in CardCertificate.objects.filter(card=card).select_related("certificate"):
        if link.certificate.status != "revoked":
            pki_services.certificate_revoke(
                certificate_id=link.certificate_id,
                reason=RevocationReason.CESSATION_OF_OPERATION,
                actor=SYSTEM.actor,
            )
        unlinked[link.slot] = link.certificate_id
        link.delete()
    if unlinked:
        audit_event_create(
            actor=SYSTEM.actor,
            action="personalization.certificates_unlink",
            object_type="card",
            object_id=str(card.pk),
            details={"session_id": str(session.pk), "certificates": unlinked},
        )
    holder = _pki_holder(card, request.card_serial)
    authorities = authority_list()
    out: dict[str, bytes] = {}
    for slot, profile in request.profiles.items():
        public = load_der_public_key(request.spki_der(slot))
        from cryptography.hazmat.primitives.asymmetric import rsa

        assert isinstance(public, rsa.RSAPublicKey)
        cert = pki_services.certificate_issue(
            authority=_authority_for(profile, authorities),
            profile=profile,
            public_key=public,
            holder=holder,
            on_hold=True,
            actor=SYSTEM.actor,
        )
        CardCertificate.objects.create(card=card, slot=slot, certificate=cert)
        out[slot] = bytes(cert.der)
    return CertificateReply(out)


# --- endings ------------------------------------------------------------------------------------


def _outcome(session: PersonalizationSession) -> dict[str, Any]:
    return {
        "session": str(session.pk),
        "job": str(session.job_id),
        "state": session.status,
        "message": session.error,
        "card_id": str(session.card_id),
        "progress": _progress(session),
    }


def _end(
    session: PersonalizationSession, status: SessionStatus, error: str = "", **fields: Any
) -> None:
    session.status = status
    session.error = error[:500]
    session.ended_at = timezone.now()
    session.sealed_secrets = None
    PersonalizationSession.objects.filter(pk=session.pk).update(
        status=status,
        error=session.error,
        ended_at=session.ended_at,
        sealed_secrets=None,
        server_cpu_ms=F("server_cpu_ms") + _cpu_take(),
        **fields,
    )
    # Earlier interrupted sessions of the job kept the sealed secrets for a resume: drop them.
    PersonalizationSession.objects.filter(job_id=session.job_id).exclude(pk=session.pk).update(
        sealed_secrets=None
    )


@transaction.atomic
def _commit(session: PersonalizationSession, result: Cps4Result) -> dict[str, Any]:
    from cms.personalization.mailer import pin_mailer_create

    session = PersonalizationSession.objects.select_for_update().get(pk=session.pk)
    job = PersonalizationJob.objects.select_for_update().get(pk=session.job_id)
    sealed = _open_secrets(session)
    request = request_complete(request_id=job.request_id, caller=SYSTEM)
    mailer = pin_mailer_create(request=request, pin=sealed.pin, puk=sealed.puk)
    job.status = JobStatus.DONE
    job.lease_expires_at = None
    job.save(update_fields=["status", "lease_expires_at", "updated_at"])
    session.checkpoint = result.checkpoint.to_dict()
    session.phase = result.checkpoint.phase
    _end(session, SessionStatus.DONE, checkpoint=session.checkpoint, phase=session.phase)
    audit_event_create(
        actor=SYSTEM.actor,
        action="personalization.complete",
        object_type="personalization_session",
        object_id=str(session.pk),
        details={
            "card_id": str(session.card_id),
            "request_id": str(request.pk),
            "station": str(session.station_id),
            "batches": session.batches,
            "pin_mailer_id": str(mailer.pk),
            "key_versions": session.key_versions,
        },
    )
    return _outcome(session)


def _requeue(request_id: UUID) -> None:
    try:
        with transaction.atomic():
            request_queue(request_id=request_id, caller=SYSTEM)
    except Conflict as exc:
        log.warning("request %s stays failed: %s", request_id, exc.message)


def _close_job(session: PersonalizationSession) -> PersonalizationJob:
    job = PersonalizationJob.objects.select_for_update().get(pk=session.job_id)
    job.status = JobStatus.CANCELLED
    job.lease_expires_at = None
    job.save(update_fields=["status", "lease_expires_at", "updated_at"])
    return job


def _fail(session: PersonalizationSession, *, spoiled: bool, error: str) -> dict[str, Any]:
    """Card wiped (or spoiled): request failed (certificates revoked by the lifecycle effects),
    job closed, request queued again with another blank card."""
    with transaction.atomic():
        job = _close_job(session)
        request_fail(request_id=job.request_id, caller=SYSTEM, spoiled=spoiled, note=error)
        _end(session, SessionStatus.SPOILED if spoiled else SessionStatus.WIPED, error)
        audit_event_create(
            actor=SYSTEM.actor,
            action="personalization.fail",
            object_type="personalization_session",
            object_id=str(session.pk),
            details={"card_id": str(session.card_id), "spoiled": spoiled, "error": error[:200]},
        )
    _requeue(job.request_id)
    return _outcome(session)


def _abort(session: PersonalizationSession, error: str) -> dict[str, Any]:
    """Nothing was written (wrong card, identification failed): the card goes back to stock."""
    with transaction.atomic():
        job = _close_job(session)
        request = CardRequest.objects.get(pk=job.request_id)
        request_fail(request_id=request.pk, caller=SYSTEM, spoiled=False, note=error)
        _end(session, SessionStatus.ABORTED, error)
        audit_event_create(
            actor=SYSTEM.actor,
            action="personalization.abort",
            object_type="personalization_session",
            object_id=str(session.pk),
            details={"card_id": str(session.card_id), "error": error[:200]},
        )
    _requeue(job.request_id)
    return _outcome(session)


def station_claim(*, station: Station, identity: CardIdentity | None) -> dict[str, Any] | None:
    """The station's claim: expire lost leases, turn queued requests into jobs, claim one (for the
    inserted card) and start its session; returns the first batch, or None if there is no job."""
    from cms.personalization.jobs import job_claim, job_release, jobs_expire, jobs_sync

    jobs_expire()
    jobs_sync()
    job = job_claim(station=station, identity=identity)
    if job is None:
        return None
    if identity is None:
        return {"state": "insert_card", "job": str(job.pk), "chip_serial": job.card.chip_serial}
    _cpu_start()
    session = session_create(job=job, station=station, identity=identity)
    try:
        return _begin(session, session.card)
    except ApplicationError:
        job_release(job_id=job.pk, station=station, reason="the session could not start")
        raise
