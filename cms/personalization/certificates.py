"""The card's certificates during personalization: the holder as the PKI names it, the issuing
authority of each profile, and the program's certificate request answered (through
``cms.effects``, the one way to the PKI)."""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from django.conf import settings

from cards.products import card_number, serial_of_card_number
from cards.programs.base import CertificateReply, CertificateRequest
from cms import effects
from cms.choices import Profession
from cms.effects import KeyToCertify
from cms.models import Card, PersonalizationSession
from cms.personalization.jobs import SYSTEM
from core.audit import audit_appends_batched, audit_event_create
from core.errors import Conflict
from core.rows import joined_read
from pki.authorities import AuthorityContext, authorities_current
from pki.choices import CaKind
from pki.domain.names import Holder as PkiHolder
from pki.models import CertificateAuthority


def authority_for(
    profile: str, authorities: Iterable[CertificateAuthority | AuthorityContext]
) -> str:
    """The short name of the issuing authority that issues ``profile``; 409 if none does."""
    for ca in authorities:
        if profile in (ca.profiles or []) and ca.kind == CaKind.ISSUING:
            return str(ca.short_name)
    raise Conflict(f"No issuing authority issues the {profile} profile; run pki_init.")


def pki_holder(card: Card) -> PkiHolder:
    """The card's holder as its certificates name them, with the card number of the registry."""
    holder = card.holder
    assert holder is not None and card.card_number is not None
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
        card_serial=card_number(serial_of_card_number(card.card_number)),
        profession_code=code,
        # The registry holds no e-mail address yet: the signature profile needs one, so the
        # holder's national id at a configured (MSSanté-like) domain stands in for it.
        email=f"{holder.national_id}@{settings.PERSONALIZATION_EMAIL_DOMAIN}",
    )


@audit_appends_batched()  # atomic; one chain extension for the certificates' events
def certificates_issue(
    session: PersonalizationSession, request: CertificateRequest
) -> CertificateReply:
    """Issue the card's certificates on hold and link them; earlier certificates of the card
    (an interrupted run that generated keys again) are retired first."""
    # The card locked, its holder read with it (one statement built once: core.rows).
    card = joined_read(Card, ("holder",), for_update=True, lock_root_only=True).get(session.card_id)
    assert isinstance(card, Card)
    if card.card_number is None or serial_of_card_number(card.card_number) != request.card_serial:
        raise Conflict(f"The card read is not card {card}.")
    retired = effects.card_certificates_retire(card=card, actor=SYSTEM.actor)
    if retired:
        audit_event_create(
            actor=SYSTEM.actor,
            action="personalization.certificates_unlink",
            object_type="card",
            object_id=str(card.pk),
            details={"session_id": str(session.pk), "certificates": retired},
        )
    holder = pki_holder(card)
    # The CAs' cached contexts, from one raw read of their stamps (not the ORM's rows: the
    # issuance share-locks the CA it signs with and checks its stamp again).
    authorities = authorities_current()
    keys: dict[str, KeyToCertify] = {}
    for slot, profile in request.profiles.items():
        public = load_der_public_key(request.spki_der(slot))
        assert isinstance(public, rsa.RSAPublicKey)
        keys[slot] = KeyToCertify(authority_for(profile, authorities), profile, public)
    issued = effects.card_certificates_issue(
        card=card, keys=keys, holder=holder, actor=SYSTEM.actor
    )
    return CertificateReply({slot: bytes(cert.der) for slot, cert in issued.items()})
