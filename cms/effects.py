"""The registry's effects on the PKI and on the contactless deny list.

This is the one way from ``cms`` to ``pki.services`` (pki knows nothing of cards or stations):
the lifecycle's certificate effects (hold, release, revoke every certificate of a card, found
through its ``CardCertificate`` links), the certificates a personalization session issues and
links, or retires when keys are generated again, and a station's client certificate. Every call
runs inside the caller's transaction (the pki services join it), so a refused effect undoes the
whole change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import connection

from cms import lifecycle
from cms.choices import CardStatus, DenyChange, DenyReason, RevokeReason
from cms.lifecycle import Effect, Transition
from cms.models import Card, CardCertificate, DenyListChangeRow, DenyListEntry
from core.actors import Actor
from core.sql import row_insert, rows_insert
from pki import services as pki_services
from pki.choices import CertificateStatus
from pki.domain.names import Holder
from pki.domain.reasons import RevocationReason
from pki.models import Certificate
from pki.services import KeyToCertify as KeyToCertify  # for the callers: their one way to pki

PENDING_SUFFIX = ".next"
"""Slot suffix of a renewal's pending certificates (``auth.next``) until the card shows them."""

_DENY_REASON = {
    CardStatus.SUSPENDED: DenyReason.SUSPENDED,
    CardStatus.REVOKED: DenyReason.REVOKED,
    CardStatus.EXPIRED: DenyReason.EXPIRED,
}


# A card's certificates (id, status) by id; a plain statement (a lifecycle transition's effect
# runs on every issuance commit, and the ORM's query building cost more CPU than the query).
_CERTIFICATES_SQL = """
SELECT c.id, c.status FROM pki_certificate c
JOIN cms_cardcertificate l ON l.certificate_id = c.id
WHERE l.card_id = %s{shown}
ORDER BY c.id
"""
_CERTIFICATES_ALL = _CERTIFICATES_SQL.format(shown="")
_CERTIFICATES_SHOWN = _CERTIFICATES_SQL.format(shown=" AND l.slot NOT LIKE %s")


def _certificates(card: Card, *, pending: bool = True) -> list[tuple[int, str]]:
    """The id and status of each certificate linked to the card, by id; without a renewal's
    pending pair (not the card's yet: ``cms.personalization.renewal``) unless ``pending``."""
    with connection.cursor() as cursor:
        if pending:
            cursor.execute(_CERTIFICATES_ALL, [card.pk])
        else:
            cursor.execute(_CERTIFICATES_SHOWN, [card.pk, f"%{PENDING_SUFFIX}"])
        return [(int(pk), str(status)) for pk, status in cursor.fetchall()]


def _hold(*, certificate_id: int, actor: Actor) -> Certificate:
    return pki_services.certificate_hold(certificate_id=certificate_id, actor=actor)


def _release_hold(*, certificate_id: int, actor: Actor) -> Certificate:
    return pki_services.certificate_release_hold(certificate_id=certificate_id, actor=actor)


def _revoke(*, certificate_id: int, actor: Actor, reason: RevocationReason) -> Certificate:
    return pki_services.certificate_revoke(
        certificate_id=certificate_id, reason=reason, actor=actor
    )


@dataclass(frozen=True, slots=True)
class _CertificateEffect:
    """What a certificate effect does to each certificate of the card in one of ``acts_on``: it
    calls ``service``, and the audit event lists the ids it changed under ``key``."""

    key: str
    acts_on: frozenset[str]
    service: Callable[..., Certificate]


_CERTIFICATE_EFFECTS = {
    Effect.HOLD_CERTIFICATES: _CertificateEffect(
        "held", frozenset({CertificateStatus.VALID}), _hold
    ),
    Effect.RELEASE_HOLD: _CertificateEffect(
        "released", frozenset({CertificateStatus.ON_HOLD}), _release_hold
    ),
    Effect.REVOKE_CERTIFICATES: _CertificateEffect(
        "revoked", frozenset({CertificateStatus.VALID, CertificateStatus.ON_HOLD}), _revoke
    ),
}


def _certificates_apply(
    effect: _CertificateEffect, *, card: Card, actor: Actor, **arguments: object
) -> list[int]:
    """Apply one certificate effect to every certificate of the card it concerns; returns the ids
    that changed."""
    changed = []
    # A hold or its release concerns the certificates the card shows; a revocation, every one.
    pending = effect.service is _revoke
    for pk, status in _certificates(card, pending=pending):
        if status in effect.acts_on:
            effect.service(certificate_id=pk, actor=actor, **arguments)
            changed.append(pk)
    return changed


def _deny_change(card: Card, change: DenyChange, reason: str) -> None:
    # the publication task versions it (cms.contactless.services.deny_list_publish)
    DenyListChangeRow.objects.create(
        card=card,
        change=change,
        desfire_uid=card.desfire_uid or "",
        card_number=card.card_number or "",
        reason=reason,
    )


def contactless_deny(*, card: Card, status: CardStatus) -> bool:
    """Add (or re-reason) the card's deny-list entry; True if the list changed."""
    reason = _DENY_REASON[status]
    entry = DenyListEntry.objects.filter(card=card).first()
    if entry is None:
        DenyListEntry.objects.create(
            card=card,
            desfire_uid=card.desfire_uid or "",
            card_number=card.card_number or "",
            reason=reason,
        )
        _deny_change(card, DenyChange.ADD, reason)
        return True
    if entry.reason != reason:
        entry.reason = reason
        entry.save(update_fields=["reason"])
        _deny_change(card, DenyChange.ADD, reason)
        return True
    return False


def contactless_allow(*, card: Card) -> bool:
    deleted, _ = DenyListEntry.objects.filter(card=card).delete()
    if deleted:
        _deny_change(card, DenyChange.REMOVE, "")
    return deleted > 0


def apply(
    *,
    card: Card,
    transition: Transition,
    reason: RevokeReason | None,
    actor: Actor,
) -> dict[str, object]:
    """Carry out the PKI and deny-list effects of ``transition``; returns what changed (for the
    audit event). ``card.status`` must already hold the target state."""
    done: dict[str, object] = {}
    for effect in transition.effects:
        certificate_effect = _CERTIFICATE_EFFECTS.get(effect)
        if certificate_effect is not None:
            arguments: dict[str, object] = {}
            crl_reason = None
            if effect is Effect.REVOKE_CERTIFICATES:
                crl_reason = lifecycle.revocation_reason_for(transition, reason)
                arguments["reason"] = crl_reason
            done[certificate_effect.key] = _certificates_apply(
                certificate_effect, card=card, actor=actor, **arguments
            )
            if crl_reason is not None:
                done["crl_reason"] = crl_reason.value
        elif effect is Effect.DENY_CONTACTLESS:
            done["denied"] = contactless_deny(card=card, status=CardStatus(card.status))
        elif effect is Effect.ALLOW_CONTACTLESS:
            done["allowed"] = contactless_allow(card=card)
        # SUPERSEDE_REPLACED_CARD is a card transition: cms.services.cards carries it out.
    return done


def apply_many(
    *,
    cards: list[Card],
    transition: Transition,
    reason: RevokeReason | None,
    actor: Actor,
) -> dict[object, dict[str, object]]:
    """:func:`apply` for many cards at once, set-based (a bulk revocation's batch): the same
    effects and the same "what changed" per card (keyed by card id), with one PKI call for every
    certificate and a few statements for the deny list. Every card's ``status`` must already hold
    the target state. Only the effects of revocation are carried out in bulk."""
    bulk_effects = {Effect.REVOKE_CERTIFICATES, Effect.DENY_CONTACTLESS}
    if set(transition.effects) - bulk_effects:
        raise ValueError(f"{transition.name} has effects that are not carried out in bulk")
    done: dict[object, dict[str, object]] = {card.pk: {} for card in cards}
    for effect in transition.effects:
        if effect is Effect.REVOKE_CERTIFICATES:
            crl_reason = lifecycle.revocation_reason_for(transition, reason)
            _certificates_revoke_many(cards, crl_reason, actor, done)
        elif effect is Effect.DENY_CONTACTLESS:
            _contactless_deny_many(cards, done)
    return done


def _certificates_revoke_many(
    cards: list[Card],
    crl_reason: RevocationReason,
    actor: Actor,
    done: dict[object, dict[str, object]],
) -> None:
    acts_on = _CERTIFICATE_EFFECTS[Effect.REVOKE_CERTIFICATES].acts_on
    card_of = dict(
        CardCertificate.objects.filter(
            card__in=[card.pk for card in cards], certificate__status__in=acts_on
        ).values_list("certificate_id", "card_id")
    )
    revoked = pki_services.certificates_revoke(
        certificate_ids=sorted(card_of), reason=crl_reason, actor=actor
    )
    by_card: dict[object, list[int]] = {card.pk: [] for card in cards}
    for cert in revoked:  # in key order, as apply() lists them
        by_card[card_of[cert.pk]].append(cert.pk)
    for card_id, ids in by_card.items():
        done[card_id]["revoked"] = ids
        done[card_id]["crl_reason"] = crl_reason.value


def _contactless_deny_many(cards: list[Card], done: dict[object, dict[str, object]]) -> None:
    """:func:`contactless_deny` for many cards: new entries and re-reasoned ones, each with its
    change row."""
    by_id = {card.pk: card for card in cards}
    reasons = {card.pk: _DENY_REASON[CardStatus(card.status)] for card in cards}
    existing = dict(
        DenyListEntry.objects.filter(card__in=list(by_id)).values_list("card_id", "reason")
    )
    new = [card_id for card_id in by_id if card_id not in existing]
    rereasoned = [card_id for card_id, reason in existing.items() if reason != reasons[card_id]]
    rows_insert(DenyListEntry).execute(
        [
            DenyListEntry(
                card_id=card_id,
                desfire_uid=by_id[card_id].desfire_uid or "",
                card_number=by_id[card_id].card_number or "",
                reason=reasons[card_id],
            )
            for card_id in new
        ]
    )
    for reason in {reasons[card_id] for card_id in rereasoned}:
        DenyListEntry.objects.filter(
            card__in=[card_id for card_id in rereasoned if reasons[card_id] == reason]
        ).update(reason=reason)
    changed = new + rereasoned
    rows_insert(DenyListChangeRow).execute(
        [
            DenyListChangeRow(
                card_id=card_id,
                change=DenyChange.ADD,
                desfire_uid=by_id[card_id].desfire_uid or "",
                card_number=by_id[card_id].card_number or "",
                reason=reasons[card_id],
            )
            for card_id in changed
        ]
    )
    changed_set = set(changed)
    for card_id in by_id:
        done[card_id]["denied"] = card_id in changed_set


# --- personalization: a card's certificates while it is written --------------------------------


_ANY_LINK_SQL = "SELECT EXISTS (SELECT 1 FROM cms_cardcertificate WHERE card_id = %s)"


def card_certificates_retire(*, card: Card, actor: Actor) -> dict[str, int]:
    """Revoke (cessation of operation) and unlink the certificates linked to a card being
    written: a resumed session generated its keys again. Returns the retired ids by slot."""
    retired: dict[str, int] = {}
    # Most cards being written have none: a plain statement says so (the ORM's query building
    # cost more CPU than the query, issue 12); the links are read only when there are some.
    with connection.cursor() as cursor:
        cursor.execute(_ANY_LINK_SQL, [card.pk])
        row = cursor.fetchone()
    if row is None or not row[0]:
        return retired
    for link in CardCertificate.objects.filter(card=card).select_related("certificate"):
        if link.certificate.status != CertificateStatus.REVOKED:
            _revoke(
                certificate_id=link.certificate_id,
                actor=actor,
                reason=RevocationReason.CESSATION_OF_OPERATION,
            )
        retired[link.slot] = link.certificate_id
        link.delete()
    return retired


def card_certificate_issue(
    *,
    card: Card,
    slot: str,
    authority: str,
    profile: str,
    public_key: rsa.RSAPublicKey,
    holder: Holder,
    actor: Actor,
) -> Certificate:
    """Certify the key of a card slot, on hold until the card is activated, and link it.

    In the caller's atomic block, which lets every error leave it (its two callers, the
    certificates of a personalization and of a renewal, catch none): no savepoint (ADR 0034)."""
    certificate = pki_services.certificate_issue(
        authority=authority,
        profile=profile,
        public_key=public_key,
        holder=holder,
        on_hold=True,
        actor=actor,
        savepoint=False,
    )
    # The link's INSERT built once from the model (core.sql), not the ORM's per-save machinery.
    link = CardCertificate(card=card, slot=slot, certificate=certificate)
    insert = row_insert(CardCertificate)
    with connection.cursor() as cursor:
        cursor.execute(insert.sql, insert.params(link))
    return certificate


def card_certificates_issue(
    *, card: Card, keys: dict[str, KeyToCertify], holder: Holder, actor: Actor
) -> dict[str, Certificate]:
    """:func:`card_certificate_issue` for each key slot of ``keys`` at once (a personalization's
    key pairs): each CA share-locked once, the links inserted by one statement. In the caller's
    atomic block, which lets every error leave it (no savepoint, ADR 0034)."""
    issued = pki_services.certificates_issue_on_hold(
        keys=list(keys.values()), holder=holder, actor=actor
    )
    by_slot = dict(zip(keys, issued, strict=True))
    # One multi-row INSERT built from the model's (core.sql), through Django's cursor (its
    # errors are Django's: the session's round trip tells a database failure by them).
    insert = row_insert(CardCertificate)
    params: list[Any] = []
    for slot, certificate in by_slot.items():
        params += insert.params(CardCertificate(card=card, slot=slot, certificate=certificate))
    with connection.cursor() as cursor:
        cursor.execute(insert.sql_for(len(by_slot)), params)
    return by_slot


# --- stations' client certificates ---------------------------------------------------------------


def station_certificate_issue(
    *, authority: str, profile: str, csr: bytes, common_name: str, actor: Actor
) -> Certificate:
    """A station's client certificate from the CSR it made."""
    return pki_services.certificate_issue(
        authority=authority, profile=profile, csr=csr, common_name=common_name, actor=actor
    )


def station_certificate_revoke(
    *, certificate: Certificate, reason: RevocationReason, actor: Actor
) -> bool:
    """Revoke a station's certificate unless it already is; True if it changed."""
    if certificate.status == CertificateStatus.REVOKED:
        return False
    _revoke(certificate_id=certificate.pk, actor=actor, reason=reason)
    return True


# --- certificate renewal on the card: the pending pair beside the current one -------------------


def _pending_links(card: Card) -> list[CardCertificate]:
    return list(
        CardCertificate.objects.filter(card=card, slot__endswith=PENDING_SUFFIX)
        .select_related("certificate")
        .order_by("slot")
    )


def card_certificates_pending_retire(*, card: Card, actor: Actor) -> dict[str, int]:
    """Revoke (cessation of operation) and unlink the pending certificates of a renewal whose
    keys are generated again or that was abandoned before its commit on the card."""
    retired: dict[str, int] = {}
    for link in _pending_links(card):
        if link.certificate.status != CertificateStatus.REVOKED:
            _revoke(
                certificate_id=link.certificate_id,
                actor=actor,
                reason=RevocationReason.CESSATION_OF_OPERATION,
            )
        retired[link.slot] = link.certificate_id
        link.delete()
    return retired


def card_certificates_pending(card: Card) -> dict[str, bytes]:
    """The pending certificates of a renewal by key slot (``auth``, ``sign``)."""
    return {
        link.slot.removesuffix(PENDING_SUFFIX): bytes(link.certificate.der)
        for link in _pending_links(card)
    }


def card_certificates_pending_release(*, card: Card, actor: Actor) -> list[int]:
    """Release the hold on the pending certificates (the card signed with their keys)."""
    released = []
    for link in _pending_links(card):
        if link.certificate.status == CertificateStatus.ON_HOLD:
            _release_hold(certificate_id=link.certificate_id, actor=actor)
            released.append(link.certificate_id)
    return released


def card_certificates_switch(*, card: Card, actor: Actor) -> dict[str, list[int]]:
    """The card now shows the pending pair: the current certificates are revoked
    ``superseded`` and kept linked as ``<slot>-<id>`` (history), the pending ones become the
    card's. Returns the ids superseded and made current."""
    superseded: list[int] = []
    current: list[int] = []
    for link in _pending_links(card):
        slot = link.slot.removesuffix(PENDING_SUFFIX)
        old = CardCertificate.objects.filter(card=card, slot=slot).select_related("certificate")
        for previous in old:
            if previous.certificate.status != CertificateStatus.REVOKED:
                _revoke(
                    certificate_id=previous.certificate_id,
                    actor=actor,
                    reason=RevocationReason.SUPERSEDED,
                )
            previous.slot = f"{slot}-{previous.certificate_id}"
            previous.save(update_fields=["slot"])
            superseded.append(previous.certificate_id)
        link.slot = slot
        link.save(update_fields=["slot"])
        current.append(link.certificate_id)
    return {"superseded": superseded, "current": current}
