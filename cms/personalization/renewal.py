"""Certificate renewal on the card, server side (issue 15 item 1, docs/after-issuance.md).

A station that reads an ACTIVE CPS4 with an open renewal invitation (the expiry sweep made it)
asks for a renewal (``renewal_claim``); the server runs ``cards.programs.renewal`` one station
round trip at a time, exactly like a personalization session (ADR 0010: the generator in memory,
the checkpoint in the row, a round trip reaching a process without the generator resumes from the
checkpoint). The program's requests and checkpoints drive the registry:

- ``CertificateRequest``: pending certificates of a previous try are revoked
  (``cessationOfOperation``) and unlinked, new ones issued **on hold** and linked as
  ``<slot>.next``;
- checkpoint ``verified`` (the card signed with each new key, checked against its certificate):
  the hold is released;
- checkpoint ``committed`` (EF.ODF names the new bank: OpenSC sees the new pair): the old
  certificates are revoked ``superseded`` and the pending ones become the card's, the invitation
  is done, in one transaction with its audit event;
- the end (``cleaned``): the renewal is done.

The holder's PIN is typed at the station and filled in by it (``Step.holder_pin``): it never
reaches the server. A removed card or a lost station interrupts the renewal; the card's next
claim resumes it from its checkpoint (the card itself says, by its EF.ODF, whether the commit
happened).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from cards.errors import CardError, CardMismatch
from cards.products import serial_of_card_number
from cards.programs.base import Batch, CertificateReply, CertificateRequest, Checkpoint
from cards.programs.renewal import PHASES, RenewalInputs, RenewalResult, renewal_program
from cards.station_protocol import Outcome, Running, batch_message
from cms import effects
from cms.callers import Caller
from cms.choices import CardStatus
from cms.models import Card, CardRenewal, PersonalizationSession, RenewalInvitation, Station
from cms.personalization import keys as card_keys
from cms.personalization.certificates import authority_for, pki_holder
from cms.personalization.choices import SessionStatus
from cms.personalization.inputs import product_of
from cms.personalization.jobs import SYSTEM
from cms.personalization.live import LiveProgram, LiveRegistry, batch_received
from cms.personalization.stations import station_check, station_for_account
from core.audit import audit_event_create
from core.errors import ApplicationError, BadInput, Conflict, Forbidden, NotFound
from core.roles import Role
from pki.selectors import authority_list

log = logging.getLogger("cms.personalization")

MODE = "renew"


_LIVE: LiveRegistry[LiveProgram] = LiveRegistry()


def _audit(action: str, renewal: CardRenewal, **details: object) -> None:
    audit_event_create(
        actor=SYSTEM.actor,
        action=action,
        object_type="card",
        object_id=str(renewal.card_id),
        details={"renewal_id": str(renewal.pk), **details},
    )


def _progress(renewal: CardRenewal) -> dict[str, Any]:
    completed = list((renewal.checkpoint or {}).get("completed", []))
    return {"completed": completed, "phases": list(PHASES), "mode": MODE}


def renewal_outcome(renewal: CardRenewal) -> Outcome:
    return {
        "session": str(renewal.pk),
        "job": str(renewal.pk),
        "state": "done"
        if renewal.status == CardRenewal.Status.DONE
        else "interrupted"
        if renewal.status == CardRenewal.Status.INTERRUPTED
        else "aborted",
        "message": renewal.error,
        "card_id": str(renewal.card_id),
        "progress": _progress(renewal),  # type: ignore[typeddict-item]
    }


# --- claim -------------------------------------------------------------------------------------


def _open_invitation(card: Card) -> RenewalInvitation | None:
    return (
        RenewalInvitation.objects.filter(card=card, status=RenewalInvitation.Status.INVITED)
        .order_by("certificates_not_after")
        .first()
    )


def renewal_claim(*, account: User, chip_serial: str) -> Running | Outcome | None:
    """Start (or resume) the renewal of the inserted card; ``None``: nothing to renew (no open
    invitation and no interrupted renewal). 409: the card is not ACTIVE or not renewable here."""
    station = station_for_account(account)
    station_check(station)
    serial = chip_serial.upper()
    with transaction.atomic():
        card = (
            Card.objects.select_for_update(of=("self",))
            .select_related("product", "holder")
            .filter(chip_serial=serial)
            .first()
        )
        if card is None:
            raise NotFound("No card of this chip serial in the registry.")
        renewal = (
            CardRenewal.objects.select_for_update()
            .filter(
                card=card, status__in=(CardRenewal.Status.RUNNING, CardRenewal.Status.INTERRUPTED)
            )
            .first()
        )
        if renewal is None:
            invitation = _open_invitation(card)
            if invitation is None:
                return None
            if card.status != CardStatus.ACTIVE:
                raise Conflict(f"Card {card} is {card.status}: only an ACTIVE card is renewed.")
            product = product_of(card)
            if product.scp03 is None or not product.issued:
                raise Conflict(f"{product.name} cards are not renewed on the card.")
            renewal = CardRenewal.objects.create(card=card, invitation=invitation, station=station)
            _audit("card.renewal_start", renewal, station=str(station.pk))
        else:
            if card.status != CardStatus.ACTIVE:
                raise Conflict(f"Card {card} is {card.status}: only an ACTIVE card is renewed.")
            renewal.station = station
            renewal.status = CardRenewal.Status.RUNNING
            renewal.save(update_fields=["station", "status", "updated_at"])
            _audit("card.renewal_resume", renewal, station=str(station.pk), phase=renewal.phase)
    return _begin(renewal, card)


def _inputs(renewal: CardRenewal, card: Card) -> RenewalInputs:
    product = product_of(card)
    serial = bytes.fromhex(card.chip_serial)
    if not card.card_number or serial_of_card_number(card.card_number) != serial:
        raise Conflict(f"Card {card} has no card number of its chip serial.")
    last = (
        PersonalizationSession.objects.filter(card=card, status=SessionStatus.DONE)
        .order_by("-started_at")
        .only("key_versions")
        .first()
    )
    versions = (
        card_keys.KeyVersions.from_dict(last.key_versions)
        if last is not None and last.key_versions
        else card_keys.KeyVersions.for_product(product, card.transport_key_version)
    )
    keys = card_keys.card_keys_derive(
        product=product,
        versions=versions,
        kdd=serial,
        serial=serial,
        uid=bytes.fromhex(card.desfire_uid or ""),
    )
    return RenewalInputs(
        card_serial=serial,
        kdd=serial,
        scp03_keys=keys.scp03,
        verification_nonce=secrets.token_bytes(32),
        certificates=effects.card_certificates_pending(card) or None,
        product=product,
    )


def _begin(renewal: CardRenewal, card: Card | None = None) -> Running | Outcome:
    if card is None:
        card = Card.objects.select_related("product", "holder").get(pk=renewal.card_id)
    checkpoint = Checkpoint.from_dict(renewal.checkpoint) if renewal.checkpoint else None
    live = LiveProgram(
        program=renewal_program(_inputs(renewal, card), resume=checkpoint), seq=renewal.seq
    )
    _LIVE.put(renewal.pk, live)
    with live.lock:
        return _advance(renewal, live, None)


# --- round trips -------------------------------------------------------------------------------


def renewal_exchange(
    *,
    renewal_id: UUID,
    account: User,
    seq: int,
    responses: object = None,
    error: str | None = None,
) -> Running | Outcome:
    """Take the station's answers to batch ``seq``; the next batch or the outcome."""
    try:
        renewal = CardRenewal.objects.select_related("station").get(pk=renewal_id)
    except CardRenewal.DoesNotExist:
        raise NotFound(f"No card renewal {renewal_id}.") from None
    station: Station | None = renewal.station
    if station is None or station.account_id != account.pk:
        station_for_account(account)
        raise Conflict("This renewal belongs to another station.")
    station_check(station)
    if renewal.status != CardRenewal.Status.RUNNING:
        return renewal_outcome(renewal)
    if error:
        _LIVE.forget(renewal.pk)
        _interrupt(renewal, f"station: {error[:200]}")
        return renewal_outcome(renewal)
    live = _LIVE.get(renewal.pk)
    if live is None or live.seq != renewal.seq:
        return _begin(renewal)
    with live.lock:
        reply = batch_received(live, seq, responses)
        if not isinstance(reply, tuple):
            return reply
        return _advance(renewal, live, reply)


def _still_running(renewal: CardRenewal) -> bool:
    """Lock the renewal's row (in the caller's atomic block, before the card's, as
    ``renewal_abandon`` does) and read its status again: a person may have abandoned it while
    this round trip was under way. Every write of the program's effects checks it first."""
    renewal.status = (
        CardRenewal.objects.select_for_update().values_list("status", flat=True).get(pk=renewal.pk)
    )
    return renewal.status == CardRenewal.Status.RUNNING


def _refuse_unless_running(renewal: CardRenewal) -> None:
    if not _still_running(renewal):
        raise Conflict(f"Renewal {renewal.pk} is {renewal.status} (abandoned): it stops here.")


def _interrupt(renewal: CardRenewal, reason: str) -> None:
    with transaction.atomic():
        if not _still_running(renewal):
            return  # abandoned meanwhile: its end stays
        renewal.status = CardRenewal.Status.INTERRUPTED
        renewal.error = reason[:500]
        renewal.save(update_fields=["status", "error", "updated_at"])
        _audit("card.renewal_interrupt", renewal, phase=renewal.phase, reason=reason[:200])


def _advance(
    renewal: CardRenewal, live: LiveProgram, reply: tuple[bytes, ...] | None
) -> Running | Outcome:
    sent: Any = reply
    try:
        while True:
            request = live.program.send(sent)
            sent = None
            if isinstance(request, Batch):
                live.seq += 1
                live.batch = request
                renewal.seq = live.seq
                renewal.batches += 1
                renewal.save(update_fields=["seq", "batches", "updated_at"])
                payload: Running = {
                    "session": str(renewal.pk),
                    "job": str(renewal.pk),
                    "state": "running",
                    "seq": live.seq,
                    "batch": batch_message(request),
                    "progress": _progress(renewal),  # type: ignore[typeddict-item]
                }
                live.last_payload = payload
                return payload
            if isinstance(request, Checkpoint):
                _checkpoint(renewal, request)
            elif isinstance(request, CertificateRequest):
                sent = _certify(renewal, request)
    except StopIteration as stop:
        _LIVE.forget(renewal.pk)
        result: RenewalResult = stop.value
        with transaction.atomic():
            if _still_running(renewal):
                renewal.status = CardRenewal.Status.DONE
                renewal.ended_at = timezone.now()
                renewal.error = ""
                renewal.save(update_fields=["status", "ended_at", "error", "updated_at"])
                _audit("card.renewal_end", renewal, bank=result.bank)
        return renewal_outcome(renewal)
    except CardMismatch as exc:
        _LIVE.forget(renewal.pk)
        _interrupt(renewal, str(exc))
        return renewal_outcome(renewal)
    except (CardError, ApplicationError) as exc:
        _LIVE.forget(renewal.pk)
        message = exc.message if isinstance(exc, ApplicationError) else str(exc)
        log.warning("card renewal %s stopped: %s", renewal.pk, message)
        _interrupt(renewal, message)
        return renewal_outcome(renewal)


@transaction.atomic
def _certify(renewal: CardRenewal, request: CertificateRequest) -> CertificateReply:
    _refuse_unless_running(renewal)
    card = (
        Card.objects.select_for_update(of=("self",))
        .select_related("holder")
        .get(pk=renewal.card_id)
    )
    if card.status != CardStatus.ACTIVE:
        raise Conflict(f"Card {card} is {card.status}: its renewal stops.")
    retired = effects.card_certificates_pending_retire(card=card, actor=SYSTEM.actor)
    holder = pki_holder(card)
    authorities = authority_list()
    out: dict[str, bytes] = {}
    issued: dict[str, int] = {}
    for slot, profile in request.profiles.items():
        public = load_der_public_key(request.spki_der(slot))
        assert isinstance(public, rsa.RSAPublicKey)
        cert = effects.card_certificate_issue(
            card=card,
            slot=f"{slot}{effects.PENDING_SUFFIX}",
            authority=authority_for(profile, authorities),
            profile=profile,
            public_key=public,
            holder=holder,
            actor=SYSTEM.actor,
        )
        out[slot] = bytes(cert.der)
        issued[slot] = cert.pk
    _audit("card.renewal_certify", renewal, issued_on_hold=issued, retired=retired)
    return CertificateReply(out)


@transaction.atomic
def _checkpoint(renewal: CardRenewal, checkpoint: Checkpoint) -> None:
    """Store the checkpoint; ``verified`` and ``committed`` carry their registry effects in the
    same transaction."""
    _refuse_unless_running(renewal)
    card = Card.objects.select_for_update(of=("self",)).get(pk=renewal.card_id)
    details: dict[str, object] = {"phase": checkpoint.phase}
    if checkpoint.phase == "verified":
        details["released"] = effects.card_certificates_pending_release(
            card=card, actor=SYSTEM.actor
        )
    elif checkpoint.phase == "committed":
        # released at ``verified`` already; never made the card's while still on hold
        details["released"] = effects.card_certificates_pending_release(
            card=card, actor=SYSTEM.actor
        )
        switched = effects.card_certificates_switch(card=card, actor=SYSTEM.actor)
        details.update(switched)
        invitation = renewal.invitation
        if invitation is not None and invitation.status == RenewalInvitation.Status.INVITED:
            invitation.status = RenewalInvitation.Status.DONE
            invitation.done_at = timezone.now()
            invitation.save(update_fields=["status", "done_at"])
            audit_event_create(
                actor=SYSTEM.actor,
                action="card.renewal_done",
                object_type="card",
                object_id=str(card.pk),
                details={"invitation_id": invitation.pk, "renewal_id": str(renewal.pk)},
            )
    renewal.checkpoint = checkpoint.to_dict()
    renewal.phase = checkpoint.phase
    renewal.save(update_fields=["checkpoint", "phase", "updated_at"])
    action = {
        "verified": "card.renewal_verified",
        "committed": "card.renew_certificates",
    }.get(checkpoint.phase, "card.renewal_checkpoint")
    _audit(action, renewal, **details)


ABANDON_ROLES = frozenset({Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT})


def renewal_list_open() -> QuerySet[CardRenewal]:
    """Renewals running or interrupted (at most one per card), the oldest activity first."""
    return (
        CardRenewal.objects.filter(
            status__in=(CardRenewal.Status.RUNNING, CardRenewal.Status.INTERRUPTED)
        )
        .select_related("card", "station")
        .order_by("updated_at", "pk")
    )


def renewal_abandon(*, renewal_id: UUID, caller: Caller = SYSTEM, reason: str = "") -> CardRenewal:
    """Close an interrupted renewal whose card never came back: pending certificates that never
    reached the card's directories are revoked (cessation of operation).

    A person (issuance operator or helpdesk agent) gives a ``reason``, kept in the audit event.
    """
    if not caller.system:
        if not (caller.roles & ABANDON_ROLES):
            allowed = ", ".join(sorted(r.value for r in ABANDON_ROLES))
            raise Forbidden(f"Abandoning a renewal needs one of the roles: {allowed}.")
        reason = reason.strip()
        if not reason:
            raise BadInput("Say why the renewal is abandoned (reason).")
    with transaction.atomic():
        renewal = CardRenewal.objects.select_for_update().filter(pk=renewal_id).first()
        if renewal is None:
            raise NotFound(f"No renewal {renewal_id}.")
        if renewal.status not in (CardRenewal.Status.RUNNING, CardRenewal.Status.INTERRUPTED):
            raise Conflict(f"Renewal {renewal.pk} is {renewal.status}.")
        card = Card.objects.select_for_update(of=("self",)).get(pk=renewal.card_id)
        # From ``verified`` on the card may show the new pair (a tear right after the commit):
        # its certificates stay valid; before it the card never showed them.
        maybe_committed = "verified" in (renewal.checkpoint or {}).get("completed", [])
        retired = (
            {}
            if maybe_committed
            else effects.card_certificates_pending_retire(card=card, actor=caller.actor)
        )
        renewal.status = CardRenewal.Status.FAILED
        renewal.ended_at = timezone.now()
        renewal.save(update_fields=["status", "ended_at", "updated_at"])
        audit_event_create(
            actor=caller.actor,
            action="card.renewal_abandon",
            object_type="card",
            object_id=str(renewal.card_id),
            details={
                "renewal_id": str(renewal.pk),
                "retired": retired,
                "phase": renewal.phase,
                "reason": reason[:200],
            },
        )
    _LIVE.forget(renewal.pk)
    return renewal
