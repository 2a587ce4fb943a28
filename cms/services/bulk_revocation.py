"""Bulk revocation (DESIGN.md §7, issue 15): a compromised card batch, a withdrawn product.

Select cards by stock batch, product, issuance window or a list of card numbers; the preview
counts the cards in service it would revoke. Launching is a dual-control act (``core.dual_control``,
kind ``cms.bulk_revocation``, security officers): the approval creates the ``BulkRevocation`` and
queues the Celery task after commit. The task revokes in batches of ``BULK_REVOCATION_BATCH``, each
in its own transaction and set-based (``cards_revoke_consequence``: one UPDATE of the cards, one of
their certificates with their CRL entries, their OCSP answers pre-signed and upserted together,
the deny list in bulk, one chain extension for the audit events, still one event per card and per
certificate), and records progress; it is resumable: a run
revokes the selected cards still in service, so a crashed run is simply run again (the beat task
``bulk_revocations_resume_task`` does it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from cms import lifecycle
from cms.callers import Caller
from cms.choices import RevokeReason
from cms.models import BulkRevocation, Card
from cms.services.cards import cards_revoke_consequence
from core import dual_control
from core.actors import Actor
from core.audit import audit_event_create
from core.errors import BadInput, NotFound
from core.models import DualControlAct
from core.roles import Role

KIND = "cms.bulk_revocation"
MAX_NUMBERS = 100_000
RUNNER = Caller.for_system("bulk-revocation")
SELECTORS = ("batch_id", "product_id", "issued_window", "card_numbers")


def _when(value: object, name: str) -> dt.datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None or parsed.tzinfo is None:
        raise BadInput(f"{name} is an ISO 8601 date and time with its offset.")
    return parsed


def selection_clean(selection: Mapping[str, Any]) -> dict[str, Any]:
    """The selection as stored: exactly one of ``batch_id``, ``product_id``, ``issued_window``
    (``{"from": …, "to": …}``, ISO 8601) or ``card_numbers`` (a list)."""
    keys = [k for k in SELECTORS if k in selection]
    if len(keys) != 1 or set(selection) - set(SELECTORS):
        raise BadInput(f"Select by exactly one of: {', '.join(SELECTORS)}.")
    key = keys[0]
    value = selection[key]
    if key in ("batch_id", "product_id"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BadInput(f"{key} is a positive whole number.")
        return {key: value}
    if key == "issued_window":
        if not isinstance(value, dict):
            raise BadInput('issued_window is {"from": …, "to": …}.')
        start, end = _when(value.get("from"), "from"), _when(value.get("to"), "to")
        if end <= start:
            raise BadInput("The issuance window ends after it starts.")
        return {key: {"from": start.isoformat(), "to": end.isoformat()}}
    if not isinstance(value, list) or not value or len(value) > MAX_NUMBERS:
        raise BadInput(f"card_numbers is a list of 1 to {MAX_NUMBERS} card numbers.")
    numbers = sorted({str(n).strip() for n in value})
    bad = [n for n in numbers if not (n.isdigit() and len(n) == 20)]
    if bad:
        raise BadInput("Card numbers have 20 digits.", extra={"invalid": bad[:20]})
    return {key: numbers}


def selected_cards(selection: Mapping[str, Any]) -> QuerySet[Card]:
    """The selected cards still in service."""
    cards = Card.objects.filter(status__in=lifecycle.LIVE_STATUSES)
    if "batch_id" in selection:
        return cards.filter(batch_id=selection["batch_id"])
    if "product_id" in selection:
        return cards.filter(product_id=selection["product_id"])
    if "issued_window" in selection:
        window = selection["issued_window"]
        return cards.filter(
            issued_at__gte=_when(window["from"], "from"), issued_at__lt=_when(window["to"], "to")
        )
    return cards.filter(card_number__in=selection["card_numbers"])


def _reason(value: object) -> RevokeReason:
    try:
        return RevokeReason(str(value or RevokeReason.COMPROMISED.value))
    except ValueError:
        raise BadInput(
            f"Unknown reason {value!r}; use one of {', '.join(RevokeReason.values)}."
        ) from None


def bulk_revocation_preview(*, selection: Mapping[str, Any]) -> dict[str, Any]:
    """How many cards in service the selection would revoke, by status and by product."""
    cards = selected_cards(selection_clean(selection))
    by_status = dict(cards.values_list("status").annotate(n=Count("pk")).order_by())
    by_product = {
        f"{name} {version}": n
        for name, version, n in cards.values_list("product__name", "product__version")
        .annotate(n=Count("pk"))
        .order_by()
    }
    return {"total": sum(by_status.values()), "by_status": by_status, "by_product": by_product}


def _validate(params: Mapping[str, Any]) -> str:
    selection = selection_clean(params.get("selection") or {})
    reason = _reason(params.get("reason"))
    total = selected_cards(selection).count()
    return f"Revoke {total} cards in service ({reason.value}) selected by {next(iter(selection))}"


def _launch(act: DualControlAct, requester: Actor, approver: Actor) -> dict[str, Any]:
    selection = selection_clean(act.params["selection"])
    reason = _reason(act.params.get("reason"))
    bulk = BulkRevocation.objects.create(
        selection=selection,
        reason=reason.value,
        act_id=act.pk,
        total=selected_cards(selection).count(),
    )
    audit_event_create(
        actor=approver,
        action="card.bulk_revocation_launch",
        object_type="bulk_revocation",
        object_id=str(bulk.pk),
        details={"act_id": act.pk, "total": bulk.total, "reason": reason.value},
    )
    transaction.on_commit(lambda: _enqueue(bulk.pk))
    return {"bulk_revocation_id": bulk.pk, "total": bulk.total}


def _enqueue(bulk_id: int) -> None:
    from cms.tasks import bulk_revocation_run_task

    bulk_revocation_run_task.delay(bulk_id)


ACT = dual_control.register(
    dual_control.ActKind(
        name=KIND,
        role=Role.SECURITY_OFFICER,
        label="Bulk revocation of cards",
        handler=_launch,
        validate=_validate,
    )
)


def bulk_revocation_run(
    *, bulk_id: int, batch_size: int | None = None, max_batches: int | None = None
) -> BulkRevocation:
    """Revoke the selected cards still in service, batch by batch (see the module docstring);
    ``max_batches`` stops early (tests of resumption)."""
    size = batch_size or settings.BULK_REVOCATION_BATCH
    bulk = BulkRevocation.objects.filter(pk=bulk_id).first()
    if bulk is None:
        raise NotFound(f"No bulk revocation #{bulk_id}.")
    reason = RevokeReason(bulk.reason)
    batches = 0
    while bulk.status == BulkRevocation.Status.RUNNING:
        if max_batches is not None and batches >= max_batches:
            break
        with transaction.atomic():
            ids = list(
                selected_cards(bulk.selection)
                .select_for_update(skip_locked=True)
                .order_by("pk")
                .values_list("pk", flat=True)[:size]
            )
            revoked = len(
                cards_revoke_consequence(
                    card_ids=ids,
                    reason=reason,
                    caller=RUNNER,
                    extra={"bulk_revocation_id": bulk.pk},
                )
            )
            bulk = BulkRevocation.objects.select_for_update().get(pk=bulk.pk)
            bulk.revoked += revoked
            if not ids:
                bulk.status = BulkRevocation.Status.DONE
                bulk.finished_at = timezone.now()
                audit_event_create(
                    actor=RUNNER.actor,
                    action="card.bulk_revocation_done",
                    object_type="bulk_revocation",
                    object_id=str(bulk.pk),
                    details={"revoked": bulk.revoked, "total": bulk.total},
                )
            bulk.save(update_fields=["revoked", "status", "finished_at", "updated_at"])
        batches += 1
    return bulk


def bulk_revocations_running() -> list[int]:
    return list(
        BulkRevocation.objects.filter(status=BulkRevocation.Status.RUNNING).values_list(
            "pk", flat=True
        )
    )
