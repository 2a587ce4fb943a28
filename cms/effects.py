"""The lifecycle's side effects on the PKI and on the contactless deny list.

This is the one place where the registry reaches into ``pki.services``: pki knows nothing of cards,
so a card finds its certificates through ``CardCertificate`` links and acts on each. Every call runs
inside the caller's transaction (the pki services join it), so a refused effect undoes the whole
transition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cms import lifecycle
from cms.choices import CardStatus, DenyReason, RevokeReason
from cms.lifecycle import Effect, Transition
from cms.models import Card, DenyListEntry
from core.actors import Actor
from pki import services as pki_services
from pki.choices import CertificateStatus
from pki.models import Certificate

_DENY_REASON = {
    CardStatus.SUSPENDED: DenyReason.SUSPENDED,
    CardStatus.REVOKED: DenyReason.REVOKED,
    CardStatus.EXPIRED: DenyReason.EXPIRED,
}


def _certificates(card: Card) -> list[Certificate]:
    return list(
        Certificate.objects.filter(pk__in=card.certificate_links.values("certificate_id")).order_by(
            "pk"
        )
    )


@dataclass(frozen=True, slots=True)
class _CertificateEffect:
    """What a certificate effect does to each certificate of the card in one of ``acts_on``: it
    calls ``service`` (looked up in ``pki.services`` at call time), and the audit event lists
    the ids it changed under ``key``."""

    key: str
    acts_on: frozenset[str]
    service: Callable[..., Certificate]


_CERTIFICATE_EFFECTS = {
    Effect.HOLD_CERTIFICATES: _CertificateEffect(
        "held",
        frozenset({CertificateStatus.VALID}),
        lambda **kwargs: pki_services.certificate_hold(**kwargs),
    ),
    Effect.RELEASE_HOLD: _CertificateEffect(
        "released",
        frozenset({CertificateStatus.ON_HOLD}),
        lambda **kwargs: pki_services.certificate_release_hold(**kwargs),
    ),
    Effect.REVOKE_CERTIFICATES: _CertificateEffect(
        "revoked",
        frozenset({CertificateStatus.VALID, CertificateStatus.ON_HOLD}),
        lambda **kwargs: pki_services.certificate_revoke(**kwargs),
    ),
}


def _certificates_apply(
    effect: _CertificateEffect, *, card: Card, actor: Actor, **arguments: object
) -> list[int]:
    """Apply one certificate effect to every certificate of the card it concerns; returns the ids
    that changed."""
    changed = []
    for cert in _certificates(card):
        if cert.status in effect.acts_on:
            effect.service(certificate_id=cert.pk, actor=actor, **arguments)
            changed.append(cert.pk)
    return changed


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
        return True
    if entry.reason != reason:
        entry.reason = reason
        entry.save(update_fields=["reason"])
        return True
    return False


def contactless_allow(*, card: Card) -> bool:
    deleted, _ = DenyListEntry.objects.filter(card=card).delete()
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
