"""The lifecycle's side effects on the PKI and on the contactless deny list.

This is the one place where the registry reaches into ``pki.services``: pki knows nothing of cards,
so a card finds its certificates through ``CardCertificate`` links and acts on each. Every call runs
inside the caller's transaction (the pki services join it), so a refused effect undoes the whole
transition.
"""

from __future__ import annotations

from cms import lifecycle
from cms.choices import CardStatus, DenyReason, RevokeReason
from cms.lifecycle import Effect, Transition
from cms.models import Card, DenyListEntry
from core.actors import Actor
from pki import services as pki_services
from pki.choices import CertificateStatus
from pki.domain.reasons import RevocationReason
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


def certificates_hold(*, card: Card, actor: Actor) -> list[int]:
    """Put every valid certificate of the card on hold; returns the ids that changed."""
    changed = []
    for cert in _certificates(card):
        if cert.status == CertificateStatus.VALID:
            pki_services.certificate_hold(certificate_id=cert.pk, actor=actor)
            changed.append(cert.pk)
    return changed


def certificates_release(*, card: Card, actor: Actor) -> list[int]:
    changed = []
    for cert in _certificates(card):
        if cert.status == CertificateStatus.ON_HOLD:
            pki_services.certificate_release_hold(certificate_id=cert.pk, actor=actor)
            changed.append(cert.pk)
    return changed


def certificates_revoke(*, card: Card, reason: RevocationReason, actor: Actor) -> list[int]:
    changed = []
    for cert in _certificates(card):
        if cert.status != CertificateStatus.REVOKED:
            pki_services.certificate_revoke(certificate_id=cert.pk, reason=reason, actor=actor)
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
        if effect is Effect.HOLD_CERTIFICATES:
            done["held"] = certificates_hold(card=card, actor=actor)
        elif effect is Effect.RELEASE_HOLD:
            done["released"] = certificates_release(card=card, actor=actor)
        elif effect is Effect.REVOKE_CERTIFICATES:
            rfc = lifecycle.revocation_reason_for(transition, reason)
            done["revoked"] = certificates_revoke(card=card, reason=rfc, actor=actor)
            done["crl_reason"] = rfc.value
        elif effect is Effect.DENY_CONTACTLESS:
            done["denied"] = contactless_deny(card=card, status=CardStatus(card.status))
        elif effect is Effect.ALLOW_CONTACTLESS:
            done["allowed"] = contactless_allow(card=card)
        # SUPERSEDE_REPLACED_CARD is a card transition: cms.services.cards carries it out.
    return done
