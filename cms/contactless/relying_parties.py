"""Relying parties and the export of the DESFire read master (key 1) to them, wrapped to their
RSA public key, under dual control (``core.dual_control``: a security officer asks, another
approves, the export happens in the approval's transaction). A withdrawn relying party's
exports are refused from then on (rotating key 1 on issued cards is the master-key rollover's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import transaction
from django.utils import timezone

from cards.products import CPS4_DESFIRE
from cms.models import RelyingParty, RelyingPartyKeyExport
from cms.personalization.keys import card_key_store
from core import dual_control
from core.actors import Actor
from core.audit import audit_event_create
from core.errors import BadInput, Conflict, NotFound, ServiceUnavailable
from core.models import DualControlAct
from core.roles import Role
from pki.keys.errors import KeyBackendError
from pki.keys.symmetric import master_label

EXPORT_ACT = "contactless.read_key_export"
READ_KEY_NO = 1


def _public_key(pem: str) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError:
        raise BadInput(
            "public_key_pem is not a PEM public key", extra={"fields": ["public_key_pem"]}
        ) from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise BadInput(
            "the read master is wrapped with RSA-OAEP: give an RSA public key of 2048 bits or more",
            extra={"fields": ["public_key_pem"]},
        )
    return key


@transaction.atomic
def relying_party_register(
    *, name: str, public_key_pem: str, contact: str, actor: Actor
) -> RelyingParty:
    _public_key(public_key_pem)
    if RelyingParty.objects.filter(name=name).exists():
        raise Conflict(f"a relying party named {name!r} exists")
    party = RelyingParty.objects.create(name=name, public_key_pem=public_key_pem, contact=contact)
    audit_event_create(
        actor=actor,
        action="contactless.relying_party_register",
        object_type="cms.relyingparty",
        object_id=str(party.pk),
        details={"name": name},
    )
    return party


@transaction.atomic
def relying_party_withdraw(*, relying_party_id: int, actor: Actor) -> RelyingParty:
    try:
        party = RelyingParty.objects.select_for_update().get(pk=relying_party_id)
    except RelyingParty.DoesNotExist:
        raise NotFound(f"no relying party #{relying_party_id}") from None
    if not party.active:
        return party  # withdrawn twice: a no-op
    party.active = False
    party.withdrawn_at = timezone.now()
    party.save(update_fields=["active", "withdrawn_at"])
    audit_event_create(
        actor=actor,
        action="contactless.relying_party_withdraw",
        object_type="cms.relyingparty",
        object_id=str(party.pk),
        details={"name": party.name},
    )
    return party


def _read_key_label() -> str:
    version = next(k.version for k in CPS4_DESFIRE.keys if k.key_no == READ_KEY_NO)
    return master_label(f"desfire-app-{READ_KEY_NO}", version)


def _validate(params: Mapping[str, Any]) -> str:
    party_id = params.get("relying_party_id")
    if not isinstance(party_id, int):
        raise BadInput("relying_party_id must be an integer")
    party = RelyingParty.objects.filter(pk=party_id).first()
    if party is None:
        raise NotFound(f"no relying party #{party_id}")
    if not party.active:
        raise Conflict(f"relying party {party.name!r} is withdrawn: no export")
    return f"export the DESFire read key (key 1) to {party.name}"


def _export(act: DualControlAct, requester: Actor, approver: Actor) -> dict[str, Any]:
    party_id = int(act.params["relying_party_id"])
    party = RelyingParty.objects.select_for_update().filter(pk=party_id).first()
    if party is None:
        raise NotFound(f"no relying party #{party_id}")
    if not party.active:
        raise Conflict(f"relying party {party.name!r} was withdrawn: the export is refused")
    label = _read_key_label()
    store = card_key_store()
    try:
        wrapped = store.wrap_rsa_oaep(label, _public_key(party.public_key_pem))
        check = store.cmac(label, bytes(16))  # a value that proves the key without showing it
    except KeyBackendError as exc:
        raise ServiceUnavailable(f"the card key store refused the export: {exc}") from None
    kcv = check[:3].hex().upper()
    export = RelyingPartyKeyExport.objects.create(
        relying_party=party, key_label=label, wrapped=wrapped, key_check_value=kcv, act_id=act.pk
    )
    audit_event_create(
        actor=approver,
        action="contactless.read_key_export",
        object_type="cms.relyingparty",
        object_id=str(party.pk),
        details={
            "export": export.pk,
            "key_label": label,
            "check_value": kcv,
            "requested_by": requester.label,
        },
    )
    return {"export_id": export.pk, "key_label": label, "check_value": kcv}


dual_control.register(
    dual_control.ActKind(
        name=EXPORT_ACT,
        role=Role.SECURITY_OFFICER,
        label="Export the DESFire read key to a relying party",
        handler=_export,
        validate=_validate,
    )
)
