"""Card products: versioned rows pointing to a ``cards.products`` definition, with its snapshot."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import transaction

from cms.callers import Caller
from cms.choices import ProductStatus
from cms.models import Product
from core.audit import audit_event_create
from core.errors import BadInput, Conflict


def definition_digest(definition: dict[str, Any]) -> str:
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@transaction.atomic
def product_register(
    *,
    name: str,
    version: str,
    status: ProductStatus,
    validity_years: int,
    definition: dict[str, Any],
    caller: Caller,
    requires_second_approval: bool = False,
) -> Product:
    """Record a product version. The same definition twice is a no-op; a version's definition
    never changes (a changed definition is a new version, 409 otherwise)."""
    if not name or not version:
        raise BadInput("A product needs a name and a version.")
    if validity_years < 1:
        raise BadInput("A product's validity is at least one year.")
    try:
        json.dumps(definition, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"The product definition is not JSON data: {exc}") from None
    digest = definition_digest(definition)
    existing = Product.objects.select_for_update().filter(name=name, version=version).first()
    if existing is not None:
        if existing.definition_sha256 != digest:
            raise Conflict(
                f"Product {name} v{version} is already registered with another definition; "
                "register the change as a new version.",
                extra={"registered_sha256": existing.definition_sha256, "given_sha256": digest},
            )
        return existing
    product = Product.objects.create(
        name=name,
        version=version,
        status=status,
        validity_years=validity_years,
        requires_second_approval=requires_second_approval,
        definition=definition,
        definition_sha256=digest,
    )
    audit_event_create(
        actor=caller.actor,
        action="product.register",
        object_type="product",
        object_id=str(product.pk),
        details={"name": name, "version": version, "status": status.value, "sha256": digest},
    )
    return product


def product_sync(*, caller: Caller) -> list[Product]:
    """Register every definition of ``cards.products`` (idempotent: known versions are kept)."""
    from cards.products import PRODUCTS

    rows = []
    with transaction.atomic():
        for (name, version), definition in sorted(PRODUCTS.items()):
            rows.append(
                product_register(
                    name=name,
                    version=str(version),
                    status=ProductStatus.ISSUED if definition.issued else ProductStatus.LEGACY,
                    validity_years=definition.validity_years,
                    definition=definition.snapshot(),
                    caller=caller,
                )
            )
    return rows
