"""Holders: create and update one, each change audited."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction

from cms.callers import Caller
from cms.choices import CardType, HolderStatus, Profession
from cms.identifiers import IdentifierError, departement_of, parse_national_id
from cms.models import Holder
from core.audit import audit_event_create
from core.errors import BadInput, Conflict, Forbidden, NotFound
from core.roles import Role

WRITE_ROLES = frozenset({Role.ISSUANCE_OPERATOR})


@dataclass(frozen=True, slots=True)
class HolderData:
    """The fields of a holder as an operator or an import row gives them."""

    national_id: str
    last_name: str
    first_name: str
    profession: str
    card_type: str = CardType.CPS
    status: str = HolderStatus.ACTIVE
    address_line1: str = ""
    address_line2: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = "FR"


def holder_data_clean(data: HolderData) -> dict[str, str]:
    """Validated, normalised column values; raises ``BadInput`` naming every wrong field."""
    errors: dict[str, str] = {}
    try:
        national_id = str(parse_national_id(data.national_id))
    except IdentifierError as exc:
        national_id = ""
        errors["national_id"] = str(exc)
    values = {f.name: str(getattr(data, f.name) or "").strip() for f in fields(data)}
    values["national_id"] = national_id
    values["last_name"] = values["last_name"].upper()
    for name in ("last_name", "first_name"):
        if not values[name]:
            errors[name] = "required"
        elif len(values[name]) > 100:
            errors[name] = "at most 100 characters"
    choices: dict[str, Any] = {
        "profession": Profession,
        "card_type": CardType,
        "status": HolderStatus,
    }
    for name, enum in choices.items():
        if values[name] not in enum.values:
            errors[name] = f"{values[name]!r} is not one of {', '.join(enum.values)}"
    values["country"] = values["country"].upper() or "FR"
    if not (len(values["country"]) == 2 and values["country"].isalpha()):
        errors["country"] = "an ISO 3166-1 alpha-2 code, e.g. FR, BE"
    postal = values["postal_code"]
    abroad = values["country"] != "FR"
    if postal and not abroad and not (len(postal) == 5 and postal.isdigit()):
        errors["postal_code"] = "a French postal code is 5 digits"
    for name, limit in (("address_line1", 200), ("address_line2", 200), ("city", 100)):
        if len(values[name]) > limit:
            errors[name] = f"at most {limit} characters"
    if errors:
        raise BadInput("The holder is not valid; see extra.fields.", extra={"fields": errors})
    values["departement"] = "" if abroad else departement_of(postal)
    return values


def _require_write(caller: Caller) -> None:
    if not caller.system and not (caller.roles & WRITE_ROLES):
        raise Forbidden("Only issuance operators register and change holders.")


def _audit_values(values: dict[str, str]) -> dict[str, str]:
    # Names and addresses stay in the registry; the audit trail records what changed, by field.
    return {k: v for k, v in values.items() if k in ("national_id", "profession", "card_type")}


@transaction.atomic
def holder_create(*, data: HolderData, caller: Caller) -> Holder:
    """Register a holder. The same data twice returns the existing holder unchanged; a different
    holder with the same national identifier is a duplicate (409)."""
    _require_write(caller)
    values = holder_data_clean(data)
    existing = Holder.objects.select_for_update().filter(national_id=values["national_id"]).first()
    if existing is not None:
        if all(getattr(existing, k) == v for k, v in values.items()):
            return existing
        raise Conflict(
            f"A holder with national identifier {values['national_id']} already exists; "
            "update it instead.",
            extra={"holder_id": str(existing.pk)},
        )
    try:
        with transaction.atomic():
            holder = Holder.objects.create(**values)
    except IntegrityError:
        raise Conflict(
            f"A holder with national identifier {values['national_id']} was just registered."
        ) from None
    audit_event_create(
        actor=caller.actor,
        action="holder.create",
        object_type="holder",
        object_id=str(holder.pk),
        details=_audit_values(values),
    )
    return holder


@transaction.atomic
def holder_update(*, holder_id: UUID, changes: dict[str, str], caller: Caller) -> Holder:
    """Change some fields of a holder (not its national identifier); nothing changed, nothing
    written."""
    _require_write(caller)
    holder = Holder.objects.select_for_update().filter(pk=holder_id).first()
    if holder is None:
        raise NotFound(f"No holder {holder_id}.")
    allowed = {f.name for f in fields(HolderData)} - {"national_id"}
    unknown = set(changes) - allowed
    if unknown:
        raise BadInput(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    current = {f.name: getattr(holder, f.name) for f in fields(HolderData)}
    values = holder_data_clean(HolderData(**{**current, **changes}))
    changed = sorted(k for k, v in values.items() if getattr(holder, k) != v)
    if not changed:
        return holder
    for name in changed:
        setattr(holder, name, values[name])
    holder.save(update_fields=[*changed, "updated_at"])
    audit_event_create(
        actor=caller.actor,
        action="holder.update",
        object_type="holder",
        object_id=str(holder.pk),
        details={"national_id": holder.national_id, "fields": changed},
    )
    if "status" in changed:
        from cms.services.holder_events import holder_status_consequences

        holder_status_consequences(holder=holder, caller=caller)
    return holder
