"""The hand-over: a migrated holder's CPS3 is revoked (``superseded``) once their CPS4 has been
active for the grace period (``CPS3_HANDOVER_GRACE_DAYS``), by a daily task.

The CPS3 is revoked only while the CPS4 that replaces it is ACTIVE at the moment of the sweep: a
CPS4 suspended, revoked or never activated leaves the CPS3 in service, so the holder is never left
without a working card by this task. Each revocation is its own transaction (a card transition,
audited, its certificates revoked through the PKI: CRL and OCSP follow).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cryptography import x509
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cms.callers import Caller
from cms.choices import CardStatus, ProductStatus, RequestKind, RequestStatus, RevokeReason
from cms.models import Card, CardRequest
from cms.services.cards import card_revoke_consequence
from core.actors import Actor
from core.audit import audit_event_create
from core.errors import ApplicationError, PolicyViolation
from cps3.models import Cps3Card
from pki.models import Certificate


def grace() -> dt.timedelta:
    return dt.timedelta(days=float(getattr(settings, "CPS3_HANDOVER_GRACE_DAYS", 30)))


def handover_due(now: dt.datetime | None = None) -> list[Card]:
    """The CPS3 cards whose CPS4 is active since the grace period or longer."""
    now = now or timezone.now()
    replaced = CardRequest.objects.filter(
        kind=RequestKind.MIGRATION,
        status=RequestStatus.DONE,
        card__status=CardStatus.ACTIVE,
        card__activated_at__lte=now - grace(),
    ).values("replaces_id")
    return list(
        Card.objects.filter(
            pk__in=replaced,
            product__status=ProductStatus.LEGACY,
            status__in=(CardStatus.ACTIVE, CardStatus.SUSPENDED),
        ).order_by("pk")
    )


def handover_sweep(now: dt.datetime | None = None) -> int:
    """Revoke each due CPS3 (``superseded``); returns how many were revoked."""
    caller = Caller.for_system("cps3 hand-over")
    done = 0
    for card in handover_due(now):
        try:
            with transaction.atomic():
                # Checked again under the lock: the CPS4 may have changed since the list was read.
                if not handover_due_for(card.pk, now):
                    continue
                card_revoke_consequence(
                    card_id=card.pk, reason=RevokeReason.SUPERSEDED, caller=caller
                )
                done += 1
        except ApplicationError:
            continue  # refused (already ended by someone): the next run looks again
    return done


def handover_due_for(card_id: UUID, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    return (
        CardRequest.objects.select_for_update(of=("self",))
        .filter(
            kind=RequestKind.MIGRATION,
            status=RequestStatus.DONE,
            replaces_id=card_id,
            card__status=CardStatus.ACTIVE,
            card__activated_at__lte=now - grace(),
        )
        .exists()
    )


# --- the CPS3 handed in at delivery ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Handin:
    legacy: Card
    cps4: Card
    revoked_now: bool


def _refused(message: str, **details: Any) -> PolicyViolation:
    """Record the refused hand-over (a security event) in a transaction of its own."""
    with transaction.atomic():
        audit_event_create(
            actor=Actor.system("cps3 hand-in"),
            action="cps3.handin_refused",
            object_type="card",
            object_id=str(details.get("cps4", "")),
            details={"reason": message, **{k: str(v) for k, v in details.items()}},
        )
    return PolicyViolation(message, extra={k: str(v) for k, v in details.items()})


def _certificate_matches(der: bytes, inventory: Cps3Card, slot: str) -> bool:
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        return False
    if getattr(inventory, f"{slot}_certificate_id"):
        ours = Certificate.objects.get(pk=getattr(inventory, f"{slot}_certificate_id"))
        return bytes(ours.der) == der
    serial = f"{certificate.serial_number:x}"
    issuer_cn = next(
        (str(a.value) for a in certificate.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)),
        "",
    )
    recorded_cn = (getattr(inventory, f"{slot}_issuer").split("CN=", 1)[-1]).split(",", 1)[0]
    return bool(serial == getattr(inventory, f"{slot}_serial") and issuer_cn == recorded_cn)


def cps3_handin(
    *, caller: Caller, cps4_card_number: str, chip_serial: str, certificates: dict[str, bytes]
) -> Handin:
    """A station read the CPS3 the holder hands in on receiving their CPS4: it must be the card
    the CPS4 replaces (chip serial) with the certificates the inventory recorded. Then the
    hand-in is recorded and, if the CPS4 is active, the CPS3 revoked at once (``superseded``);
    otherwise the daily hand-over revokes it after the CPS4's activation. A mismatch stops the
    hand-over (422) and is audited."""
    serial = chip_serial.strip().upper()
    cps4 = Card.objects.filter(card_number=cps4_card_number.strip()).first()
    request = (
        CardRequest.objects.filter(kind=RequestKind.MIGRATION, card=cps4)
        .select_related("replaces")
        .first()
        if cps4
        else None
    )
    if cps4 is None or request is None or request.replaces is None:
        raise _refused(
            "This card number is not a CPS4 issued for a migration: no CPS3 to hand in.",
            cps4=cps4_card_number,
        )
    legacy = request.replaces
    if legacy.chip_serial.upper() != serial:
        raise _refused(
            f"The card handed in (chip serial {serial}) is not the CPS3 this holder's CPS4 "
            f"replaces (chip serial {legacy.chip_serial}). Stop the hand-over and check the "
            "holder's identity.",
            cps4=cps4.card_number,
            read=serial,
            expected=legacy.chip_serial,
        )
    inventory = Cps3Card.objects.filter(chip_serial=serial).first()
    for slot in ("auth", "sign"):
        if inventory is None or not getattr(inventory, f"{slot}_serial"):
            continue
        if not _certificate_matches(certificates.get(slot, b""), inventory, slot):
            raise _refused(
                f"The {slot} certificate on the card handed in is not the one recorded for this "
                "CPS3. Stop the hand-over: the card may have been altered.",
                cps4=cps4.card_number,
                read=serial,
                slot=slot,
            )
    with transaction.atomic():
        locked = Card.objects.select_for_update().get(pk=legacy.pk)
        cps4 = Card.objects.select_for_update().get(pk=cps4.pk)
        audit_event_create(
            actor=caller.actor,
            action="cps3.handed_in",
            object_type="card",
            object_id=str(locked.pk),
            details={"chip_serial": serial, "cps4": cps4.card_number or ""},
        )
        revoke = cps4.status == CardStatus.ACTIVE and locked.status in (
            CardStatus.ACTIVE,
            CardStatus.SUSPENDED,
        )
        if revoke:
            card_revoke_consequence(
                card_id=locked.pk,
                reason=RevokeReason.SUPERSEDED,
                caller=Caller.for_system("cps3 hand-in"),
            )
        locked.refresh_from_db()
    return Handin(legacy=locked, cps4=cps4, revoked_now=revoke)
