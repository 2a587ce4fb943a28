"""What the CPS4 program of a session is given: the card's stock record, identity and validity
from the registry, its keys re-derived from the card key store, the sealed secrets, and (once
written) its certificates. Nothing here is stored: a resumed session assembles it again."""

from __future__ import annotations

from cards.products import Product, card_number, get_product, serial_of_card_number
from cards.programs.base import Checkpoint
from cards.programs.cps4 import PROGRAM, Cps4Inputs, Identity, StockRecord
from cms.models import Card, CardCertificate, PersonalizationSession
from cms.personalization import keys as card_keys
from cms.personalization.sealing import secrets_open
from core.errors import Conflict


def product_of(card: Card) -> Product:
    return get_product(card.product.name, int(card.product.version))


def program_inputs(session: PersonalizationSession, card: Card, atr: bytes) -> Cps4Inputs:
    """The program's inputs for ``card`` in ``session`` (``atr`` as the station read it)."""
    product = product_of(card)
    serial = bytes.fromhex(card.chip_serial)
    if not card.card_number or serial_of_card_number(card.card_number) != serial:
        raise Conflict(f"Card {card} has no card number of its chip serial; it cannot be written.")
    uid = bytes.fromhex(card.desfire_uid or "")
    versions = card_keys.KeyVersions.from_dict(session.key_versions)
    keys = card_keys.card_keys_derive(
        product=product, versions=versions, kdd=serial, serial=serial, uid=uid
    )
    sealed = secrets_open(session)
    assert card.holder is not None
    checkpoint = Checkpoint.from_dict(session.checkpoint) if session.checkpoint else None
    written = checkpoint is not None and checkpoint.done("contact_keys_certificates")
    certificates = (
        {
            link.slot: bytes(link.certificate.der)
            for link in CardCertificate.objects.filter(card=card).select_related("certificate")
        }
        if written
        else None
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
        desfire_app_initial_key=keys.app_initial,
        desfire_transport_key_version=versions.transport,
        admin_key=keys.admin,
        pin=sealed.pin,
        puk=sealed.puk,
        access_credential=sealed.access_credential,
        certificates=certificates,
        product=product,
    )


def as_program_checkpoint(checkpoint: Checkpoint, inputs: Cps4Inputs) -> Checkpoint:
    """A rollback's checkpoint under the personalization program's name."""
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
