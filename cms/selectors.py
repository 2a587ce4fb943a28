"""Reads of the registry: typed querysets that the API's FilterSets narrow."""

from __future__ import annotations

from uuid import UUID

from django.db.models import Count, QuerySet

from cms.choices import CardStatus
from cms.models import (
    Card,
    CardRequest,
    CardTransitionApproval,
    DenyListEntry,
    Holder,
    Product,
    SitePool,
    StockBatch,
)
from core.errors import NotFound


def holder_list() -> QuerySet[Holder]:
    return Holder.objects.order_by("last_name", "first_name", "national_id")


def holder_get(*, holder_id: UUID) -> Holder:
    holder = Holder.objects.filter(pk=holder_id).first()
    if holder is None:
        raise NotFound(f"No holder {holder_id}.")
    return holder


def product_list() -> QuerySet[Product]:
    return Product.objects.order_by("name", "version")


def product_get(*, product_id: int) -> Product:
    product = Product.objects.filter(pk=product_id).first()
    if product is None:
        raise NotFound(f"No product #{product_id}.")
    return product


def pool_list() -> QuerySet[SitePool]:
    return SitePool.objects.order_by("code")


def batch_list() -> QuerySet[StockBatch]:
    return StockBatch.objects.select_related("product").order_by("-received_at", "-pk")


def stock_counts(
    *, pool_id: int | None = None, product_id: int | None = None
) -> list[dict[str, object]]:
    """Cards counted by pool, product and state (every state listed, zeros included)."""
    cards = Card.objects.all()
    if pool_id is not None:
        cards = cards.filter(pool_id=pool_id)
    if product_id is not None:
        cards = cards.filter(product_id=product_id)
    rows = (
        cards.values("pool__code", "product__name", "product__version", "status")
        .annotate(n=Count("pk"))
        .order_by("pool__code", "product__name", "product__version", "status")
    )
    grouped: dict[tuple[str, str], dict[str, int]] = {}
    for row in rows:
        key = (row["pool__code"] or "", f"{row['product__name']} v{row['product__version']}")
        grouped.setdefault(key, dict.fromkeys(CardStatus.values, 0))[row["status"]] = row["n"]
    return [
        {"pool": pool, "product": product, "counts": counts}
        for (pool, product), counts in sorted(grouped.items())
    ]


def card_list() -> QuerySet[Card]:
    return Card.objects.select_related("holder", "product", "pool").order_by("created_at", "pk")


def card_get(*, card_id: UUID) -> Card:
    card = card_list().filter(pk=card_id).first()
    if card is None:
        raise NotFound(f"No card {card_id}.")
    return card


def card_approval_list() -> QuerySet[CardTransitionApproval]:
    return CardTransitionApproval.objects.select_related(
        "card", "requested_by", "decided_by"
    ).order_by("-created_at", "-pk")


def request_list() -> QuerySet[CardRequest]:
    return CardRequest.objects.select_related("holder", "product").order_by("-created_at", "-pk")


def request_get(*, request_id: UUID) -> CardRequest:
    request = request_list().filter(pk=request_id).first()
    if request is None:
        raise NotFound(f"No request {request_id}.")
    return request


def deny_list() -> QuerySet[DenyListEntry]:
    return DenyListEntry.objects.order_by("created_at", "pk")
