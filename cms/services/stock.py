"""Stock: blank cards registered from a vendor batch file, assigned to site pools."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from uuid import UUID

from django.db import transaction
from django.db.models import Count, Q

from cms.callers import Caller
from cms.choices import CardStatus, ProductStatus
from cms.models import Card, Product, SitePool, StockBatch
from cms.personalization.keys import transport_version_check
from core.audit import audit_event_create
from core.errors import BadInput, Conflict, Forbidden, NotFound, PolicyViolation
from core.roles import Role

STOCK_ROLES = frozenset({Role.ISSUANCE_OPERATOR})
_HEX = re.compile(r"[0-9A-F]+")
_SLUG = re.compile(r"[-a-z0-9_]{1,32}")


def _require(caller: Caller) -> None:
    if not caller.system and not (caller.roles & STOCK_ROLES):
        raise Forbidden("Only issuance operators manage the card stock.")


@transaction.atomic
def pool_create(*, code: str, name: str, caller: Caller) -> SitePool:
    """Create a site pool; the same code and name again is a no-op."""
    _require(caller)
    if not _SLUG.fullmatch(code) or not name.strip():
        raise BadInput("A pool needs a code (lower-case letters, digits, - and _) and a name.")
    pool = SitePool.objects.select_for_update().filter(code=code).first()
    if pool is not None:
        if pool.name != name.strip():
            raise Conflict(f"Pool {code} exists with another name ({pool.name}).")
        return pool
    pool = SitePool.objects.create(code=code, name=name.strip())
    audit_event_create(
        actor=caller.actor,
        action="stock.pool_create",
        object_type="site_pool",
        object_id=str(pool.pk),
        details={"code": code},
    )
    return pool


def _parse_batch(content: bytes) -> list[tuple[str, str | None, int]]:
    """Rows (chip serial, DESFire UID, transport key version); every fault reported at once."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput("The batch file is not UTF-8 text.") from None
    first_line = text.split("\n", 1)[0]
    reader = csv.DictReader(io.StringIO(text), delimiter=max(";,|\t", key=first_line.count))
    try:
        return _batch_rows(reader)
    except csv.Error as exc:  # a field over the csv module's limit, a NUL byte...
        raise BadInput(
            "The batch file cannot be read as CSV; nothing was registered.",
            extra={"line": reader.line_num, "reason": str(exc)},
        ) from None


def _batch_rows(reader: csv.DictReader[str]) -> list[tuple[str, str | None, int]]:
    fieldnames = [f.strip().lower() for f in reader.fieldnames or []]
    if "chip_serial" not in fieldnames:
        raise BadInput(
            "The batch file needs a header with chip_serial (and desfire_uid, "
            "transport_key_version)."
        )
    reader.fieldnames = fieldnames
    rows: list[tuple[str, str | None, int]] = []
    errors: list[dict[str, object]] = []
    seen: set[str] = set()
    for raw in reader:
        line = reader.line_num
        serial = (raw.get("chip_serial") or "").strip().upper()
        uid = (raw.get("desfire_uid") or "").strip().upper() or None
        tkv_text = (raw.get("transport_key_version") or "0").strip()
        problems = []
        if not (8 <= len(serial) <= 32 and _HEX.fullmatch(serial)):
            problems.append("chip_serial must be 8 to 32 hex digits")
        if uid is not None and not (len(uid) == 14 and _HEX.fullmatch(uid)):
            problems.append("desfire_uid must be 7 bytes (14 hex digits)")
        if not (tkv_text.isdigit() and int(tkv_text) <= 255):
            problems.append("transport_key_version must be 0 to 255")
        for value in (serial, uid):
            if value and value in seen:
                problems.append(f"{value} appears twice in the file")
            if value:
                seen.add(value)
        if problems:
            errors.append({"line": line, "errors": problems})
        else:
            rows.append((serial, uid, int(tkv_text)))
    if errors:
        raise BadInput(
            "The batch file has invalid rows; nothing was registered.", extra={"rows": errors}
        )
    if not rows:
        raise BadInput("The batch file lists no card.")
    return rows


@transaction.atomic
def stock_batch_register(
    *, vendor: str, reference: str, product_id: int, content: bytes, caller: Caller
) -> StockBatch:
    """Register a vendor batch: all its cards or none. The same file again is a no-op."""
    _require(caller)
    if not vendor.strip() or not reference.strip():
        raise BadInput("A batch needs the vendor and the vendor's batch reference.")
    digest = hashlib.sha256(content).hexdigest()
    existing = (
        StockBatch.objects.select_for_update().filter(vendor=vendor, reference=reference).first()
    )
    if existing is not None:
        if existing.file_sha256 != digest:
            raise Conflict(f"Batch {vendor}/{reference} was registered from another file.")
        return existing
    product = Product.objects.filter(pk=product_id).first()
    if product is None:
        raise NotFound(f"No product #{product_id}.")
    if product.status != ProductStatus.ISSUED:
        raise PolicyViolation(f"{product} is a legacy product; no blank stock is bought for it.")
    rows = _parse_batch(content)
    for version in sorted({r[2] for r in rows}):
        # A version the card key store cannot answer for would only fail at the station.
        transport_version_check(version)
    serials = [r[0] for r in rows]
    uids = [r[1] for r in rows if r[1]]
    clash = list(
        Card.objects.filter(chip_serial__in=serials).values_list("chip_serial", flat=True)[:20]
    ) + list(Card.objects.filter(desfire_uid__in=uids).values_list("desfire_uid", flat=True)[:20])
    if clash:
        raise Conflict(
            "Some cards of this batch are already registered; nothing was registered.",
            extra={"already_registered": sorted(clash)},
        )
    batch = StockBatch.objects.create(
        vendor=vendor,
        reference=reference,
        product=product,
        file_sha256=digest,
        card_count=len(rows),
    )
    Card.objects.bulk_create(
        [
            Card(
                chip_serial=serial,
                desfire_uid=uid,
                transport_key_version=tkv,
                product=product,
                batch=batch,
                status=CardStatus.IN_STOCK,
            )
            for serial, uid, tkv in rows
        ],
        batch_size=2000,
    )
    audit_event_create(
        actor=caller.actor,
        action="stock.batch_register",
        object_type="stock_batch",
        object_id=str(batch.pk),
        details={
            "vendor": vendor,
            "reference": reference,
            "product": str(product),
            "cards": len(rows),
            "sha256": digest,
        },
    )
    return batch


@transaction.atomic
def stock_assign_pool(
    *,
    pool_id: int,
    caller: Caller,
    batch_id: int | None = None,
    card_ids: list[UUID] | None = None,
) -> int:
    """Move blank cards (a whole batch or listed cards) into a site pool; returns how many
    moved. Cards already in the pool are left alone, so repeating it is a no-op."""
    _require(caller)
    if (batch_id is None) == (card_ids is None):
        raise BadInput("Give either a batch or a list of cards.")
    pool = SitePool.objects.filter(pk=pool_id).first()
    if pool is None:
        raise NotFound(f"No pool #{pool_id}.")
    cards = Card.objects.select_for_update()
    cards = (
        cards.filter(batch_id=batch_id)
        if batch_id is not None
        else cards.filter(pk__in=card_ids or [])
    )
    selected = list(cards.order_by("pk"))
    if card_ids is not None and len(selected) != len(set(card_ids)):
        raise NotFound("Some of the listed cards do not exist.")
    if batch_id is not None and not selected:
        raise NotFound(f"No card in batch #{batch_id}.")
    not_blank = [str(c.pk) for c in selected if c.status != CardStatus.IN_STOCK]
    if not_blank:
        raise Conflict(
            "Only blank cards in stock change pool.", extra={"not_in_stock": not_blank[:50]}
        )
    moving = [c.pk for c in selected if c.pool_id != pool.pk]
    if not moving:
        return 0
    Card.objects.filter(pk__in=moving).update(pool=pool)
    audit_event_create(
        actor=caller.actor,
        action="stock.assign_pool",
        object_type="site_pool",
        object_id=str(pool.pk),
        details={"pool": pool.code, "cards": len(moving), "batch_id": batch_id},
    )
    return len(moving)


def stock_batch_preview(content: bytes) -> list[tuple[str, str | None, int]]:
    """The rows a batch file would register (chip serial, DESFire UID, transport key version),
    checked as ``stock_batch_register`` checks them; nothing is written."""
    return _parse_batch(content)


@transaction.atomic
def pool_threshold_set(*, pool_id: int, threshold: int, caller: Caller) -> SitePool:
    """The low-stock threshold of a pool (blank cards in stock below it: an alert; 0: none)."""
    _require(caller)
    if not 0 <= threshold <= 1_000_000:
        raise BadInput("A low-stock threshold is 0 to 1000000 cards.")
    pool = SitePool.objects.select_for_update().filter(pk=pool_id).first()
    if pool is None:
        raise NotFound(f"No pool #{pool_id}.")
    if pool.low_stock_threshold == threshold:
        return pool
    previous = pool.low_stock_threshold
    pool.low_stock_threshold = threshold
    pool.save(update_fields=["low_stock_threshold"])
    audit_event_create(
        actor=caller.actor,
        action="stock.pool_threshold",
        object_type="site_pool",
        object_id=str(pool.pk),
        details={"code": pool.code, "threshold": threshold, "previous": previous},
    )
    return pool


def pools_low_on_stock() -> list[tuple[SitePool, int]]:
    """Pools with a threshold whose blank cards in stock fell below it, with their count."""
    pools = SitePool.objects.filter(low_stock_threshold__gt=0).annotate(
        blank=Count("cards", filter=Q(cards__status=CardStatus.IN_STOCK))
    )
    return [(pool, pool.blank) for pool in pools if pool.blank < pool.low_stock_threshold]
