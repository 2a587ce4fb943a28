"""Card requests: new card, renewal, replacement, migration, with four-eyes approval.

draft → submitted → approved → queued → personalizing → done, or rejected / failed (a failed
request is queued again with another blank card). Moves are declared in
``cms.lifecycle.REQUEST_TRANSITIONS``.
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from cms import lifecycle
from cms.callers import Caller
from cms.choices import CardStatus, HolderStatus, ProductStatus, RequestKind, RequestStatus
from cms.models import IN_SERVICE, Card, CardRequest, Holder, Product, SitePool
from cms.services.cards import card_transition_within
from core.audit import audit_event_create
from core.errors import BadInput, Conflict, Forbidden, NotFound, PolicyViolation
from core.rows import joined_read, row_update

OPEN_STATUSES = (
    RequestStatus.DRAFT,
    RequestStatus.SUBMITTED,
    RequestStatus.APPROVED,
    RequestStatus.QUEUED,
    RequestStatus.PERSONALIZING,
    RequestStatus.FAILED,  # waiting to be queued again
)


def _audit(request: CardRequest, caller: Caller, action: str, **details: object) -> None:
    audit_event_create(
        actor=caller.actor,
        action=f"request.{action}",
        object_type="card_request",
        object_id=str(request.pk),
        details={"kind": request.kind, "status": request.status, **details},
    )


def _locked(request_id: UUID) -> CardRequest:
    request = CardRequest.objects.select_for_update().filter(pk=request_id).first()
    if request is None:
        raise NotFound(f"No request {request_id}.")
    return request


def _stock_service(caller: Caller) -> Caller:
    if caller.system:
        return caller
    return Caller.for_system(f"stock (for {caller.actor.label})")


def _check(name: str, request: CardRequest, caller: Caller) -> lifecycle.RequestTransition:
    t = lifecycle.REQUEST_BY_NAME[name]
    if not ((caller.system and t.system) or (caller.roles & t.roles)):
        raise Forbidden(f"{name} needs one of the roles: {', '.join(sorted(t.roles))}.")
    if request.status not in t.sources:
        status = RequestStatus(request.status)
        allowed = [r.name for r in lifecycle.REQUEST_TRANSITIONS if status in r.sources]
        raise Conflict(
            f"Request {request.pk} is {status.value}: {name} is not allowed from there.",
            extra={"status": status.value, "transition": name, "allowed": allowed},
        )
    return t


def _validate_new(
    *, holder: Holder, kind: RequestKind, product: Product, replaces: Card | None
) -> None:
    if holder.status != HolderStatus.ACTIVE:
        raise PolicyViolation(f"Holder {holder.national_id} is {holder.status}; no card is issued.")
    if product.status != ProductStatus.ISSUED:
        raise PolicyViolation(f"{product} is a legacy product; it is never newly issued.")
    if kind == RequestKind.NEW:
        if replaces is not None:
            raise BadInput("A new-card request replaces no card; use renewal or replacement.")
        if Card.objects.filter(
            holder=holder, card_type=holder.card_type, status__in=IN_SERVICE
        ).exists():
            raise PolicyViolation(
                "The holder already has a card in service; ask for a renewal or a replacement."
            )
        return
    if replaces is None:
        raise BadInput(f"A {kind.value} request names the card it replaces (replaces_card_id).")
    if replaces.holder_id != holder.pk:
        raise BadInput("The replaced card belongs to another holder.")
    if kind == RequestKind.MIGRATION and replaces.product.status != ProductStatus.LEGACY:
        raise BadInput("A migration replaces a legacy (CPS3) card.")


@transaction.atomic
def request_create(
    *,
    holder_id: UUID,
    kind: str,
    product_id: int,
    caller: Caller,
    replaces_card_id: UUID | None = None,
    pool_id: int | None = None,
    note: str = "",
) -> CardRequest:
    """Open a request (draft). An open request of the same kind for the same holder and product
    is returned as it is: asking twice opens one request."""
    if not (caller.system or caller.roles & lifecycle.REQUEST_BY_NAME["submit"].roles):
        raise Forbidden("Only issuance operators and helpdesk agents open card requests.")
    try:
        request_kind = RequestKind(kind)
    except ValueError:
        raise BadInput(
            f"Unknown kind {kind!r}; use one of {', '.join(RequestKind.values)}."
        ) from None
    holder = Holder.objects.select_for_update().filter(pk=holder_id).first()
    if holder is None:
        raise NotFound(f"No holder {holder_id}.")
    product = Product.objects.filter(pk=product_id).first()
    if product is None:
        raise NotFound(f"No product #{product_id}.")
    existing = CardRequest.objects.filter(
        holder=holder, kind=request_kind, product=product, status__in=OPEN_STATUSES
    ).first()
    if existing is not None:
        return existing
    replaces = None
    if replaces_card_id is not None:
        replaces = Card.objects.filter(pk=replaces_card_id).select_related("product").first()
        if replaces is None:
            raise NotFound(f"No card {replaces_card_id}.")
    if pool_id is not None and not SitePool.objects.filter(pk=pool_id).exists():
        raise NotFound(f"No pool #{pool_id}.")
    _validate_new(holder=holder, kind=request_kind, product=product, replaces=replaces)
    try:
        with transaction.atomic():
            request = CardRequest.objects.create(
                kind=request_kind,
                holder=holder,
                product=product,
                replaces=replaces,
                pool_id=pool_id,
                note=note[:500],
                requires_second_approval=lifecycle.request_needs_second_approval(
                    request_kind, product_requires=product.requires_second_approval
                ),
                requested_by_id=caller.user_id,
                requested_by_label=caller.actor.label,
            )
    except IntegrityError:
        raise Conflict("An open request of this kind was just created for this holder.") from None
    _audit(
        request,
        caller,
        "create",
        holder=holder.national_id,
        product=str(product),
        replaces=str(replaces.pk) if replaces else "",
    )
    return request


@transaction.atomic
def request_submit(*, request_id: UUID, caller: Caller) -> CardRequest:
    request = _locked(request_id)
    if request.status != RequestStatus.DRAFT and request.submitted_at is not None:
        return request  # submitted already (and perhaps moved on): a repeat changes nothing
    _check("submit", request, caller)
    now = timezone.now()
    request.submitted_at = now
    if request.requires_second_approval:
        request.status = RequestStatus.SUBMITTED
        request.save(update_fields=["status", "submitted_at"])
        _audit(request, caller, "submit", second_approver_required=True)
    else:
        request.status = RequestStatus.APPROVED
        request.decided_at = now
        request.save(update_fields=["status", "submitted_at", "decided_at"])
        _audit(request, caller, "submit", second_approver_required=False)
    return request


@transaction.atomic
def request_approve(*, request_id: UUID, caller: Caller, note: str = "") -> CardRequest:
    """The second person's approval. A requester never approves their own request (403)."""
    request = _locked(request_id)
    if caller.user_id is None or caller.user_id == request.requested_by_id:
        raise Forbidden("A request is approved by someone other than its requester.")
    if request.approved_by_id == caller.user_id:
        return request
    _check("approve", request, caller)
    request.status = RequestStatus.APPROVED
    request.approved_by_id = caller.user_id
    request.decided_at = timezone.now()
    request.decision_note = note[:500]
    request.save(update_fields=["status", "approved_by", "decided_at", "decision_note"])
    _audit(request, caller, "approve", requested_by=request.requested_by_label)
    return request


@transaction.atomic
def request_reject(*, request_id: UUID, caller: Caller, note: str = "") -> CardRequest:
    """Refused by a second person, or withdrawn by its requester."""
    request = _locked(request_id)
    if request.status == RequestStatus.REJECTED:
        return request
    own = caller.user_id is not None and caller.user_id == request.requested_by_id
    if own and request.status in (RequestStatus.DRAFT, RequestStatus.SUBMITTED):
        pass  # withdrawing one's own request needs no other role
    else:
        _check("reject", request, caller)
    request.status = RequestStatus.REJECTED
    request.rejected_by_id = caller.user_id
    request.decided_at = timezone.now()
    request.decision_note = note[:500]
    request.save(update_fields=["status", "rejected_by", "decided_at", "decision_note"])
    _audit(request, caller, "reject", withdrawn=own)
    return request


@transaction.atomic
def request_queue(*, request_id: UUID, caller: Caller) -> CardRequest:
    """Allocate a blank card of the product (from the request's pool) and queue the request."""
    request = _locked(request_id)
    if request.status == RequestStatus.QUEUED:
        return request
    _check("queue", request, caller)
    # A blank card still linked to an older request (left there by a failure outside
    # ``request_fail``) is passed over: taking it would break the one-request-per-card rule.
    blank = Card.objects.select_for_update(skip_locked=True, of=("self",)).filter(
        product_id=request.product_id, status=CardStatus.IN_STOCK, request__isnull=True
    )
    if request.pool_id is not None:
        blank = blank.filter(pool_id=request.pool_id)
    card = blank.order_by("created_at", "pk").first()
    if card is None:
        raise Conflict(
            "No blank card of this product in stock"
            + (" in the request's pool" if request.pool_id else "")
            + "; register a batch or move cards into the pool.",
            extra={"product_id": request.product_id, "pool_id": request.pool_id},
        )
    holder = Holder.objects.get(pk=request.holder_id)
    # The allocation itself is the stock service's step (a system transition), on the person's
    # behalf: the audit names them.
    card_transition_within(
        card_id=card.pk, transition="allocate", caller=_stock_service(caller), holder=holder
    )
    request.card = card
    request.status = RequestStatus.QUEUED
    request.save(update_fields=["card", "status"])
    _audit(request, caller, "queue", card_id=str(card.pk))
    return request


# No savepoint of its own nor its card's (ADR 0034): its one caller, the station's claim, lets
# every error roll the claim back.
@transaction.atomic(savepoint=False)
def request_personalization_start(*, request_id: UUID, caller: Caller) -> CardRequest:
    # The statements built once (core.rows): this runs in every station's claim, where the ORM's
    # query building cost more CPU than the queries (what _locked and save() read and write).
    request = joined_read(CardRequest, (), for_update=True).get(request_id)
    if not isinstance(request, CardRequest):
        raise NotFound(f"No request {request_id}.")
    if request.status == RequestStatus.PERSONALIZING:
        return request
    _check("start", request, caller)
    assert request.card_id is not None  # a queued request holds its card
    outcome = card_transition_within(
        card_id=request.card_id,
        transition="personalize",
        caller=caller,
        related=("product", "holder"),  # what the session about to start reads of it
    )
    request.card = outcome.card  # locked and PERSONALIZING, its product and holder with it
    request.status = RequestStatus.PERSONALIZING
    row_update(CardRequest, ("status",)).execute(request.pk, [request.status])
    _audit(request, caller, "start", card_id=str(request.card_id))
    return request


# No savepoint of its own nor its card's (ADR 0034): its one caller, the personalization's
# commit, lets every error roll the commit back.
@transaction.atomic(savepoint=False)
def request_complete(
    *, request_id: UUID, caller: Caller, valid_until: dt.date | None = None
) -> CardRequest:
    """Personalization verified: the card becomes ISSUED (certificates on hold), its registry
    expiry the end date written on it (``valid_until``)."""
    # Locked as ``_locked`` locks it, read with its site (the PIN mailer's) by one statement
    # built once (core.rows): the ORM's query building cost more CPU than the queries.
    request = joined_read(CardRequest, ("pool",), for_update=True, lock_root_only=True).get(
        request_id
    )
    if request is None:
        raise NotFound(f"No request {request_id}.")
    assert isinstance(request, CardRequest)
    if request.status == RequestStatus.DONE:
        return request
    _check("complete", request, caller)
    assert request.card_id is not None
    outcome = card_transition_within(
        card_id=request.card_id, transition="issue", caller=caller, valid_until=valid_until
    )
    request.card = outcome.card  # locked and issued: what comes next (the mailer) reads it
    request.status = RequestStatus.DONE
    request.completed_at = timezone.now()
    row_update(CardRequest, ("status", "completed_at")).execute(
        request.pk, [request.status, request.completed_at]
    )
    _audit(request, caller, "complete", card_id=str(request.card_id))
    return request


@transaction.atomic
def request_fail(*, request_id: UUID, caller: Caller, spoiled: bool, note: str = "") -> CardRequest:
    """Personalization failed: the card is wiped back to stock or spoiled, the request freed of
    it (queue it again to retry with another card)."""
    request = _locked(request_id)
    if request.status == RequestStatus.FAILED:
        return request
    _check("fail", request, caller)
    if request.card_id is None:
        raise BadInput("A request being personalized holds a card.")
    card_id = request.card_id
    card_transition_within(
        card_id=card_id, transition="spoil" if spoiled else "wipe", caller=caller
    )
    request.card = None
    request.status = RequestStatus.FAILED
    request.decision_note = note[:500]
    request.save(update_fields=["card", "status", "decision_note"])
    _audit(request, caller, "fail", card_id=str(card_id), spoiled=spoiled)
    return request
