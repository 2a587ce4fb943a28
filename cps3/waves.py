"""Migration waves: plan, preview, launch under dual control, create the CPS4 requests day by day.

A wave selects, among the CPS3 cards of the inventory, the active ones whose holder is known,
active, clear of identity exceptions, without a CPS4 in service and in no other live wave; filters:
professions, départements, a CPS3 expiry range. Planning is one ``INSERT … SELECT``: the holders
in order of CPS3 expiry, ``daily_capacity`` a day from ``start_on``. Launching asks a second
person (``core.dual_control``, kind ``cps3.wave_launch``); once approved the wave runs: the
advance task creates, in batches, the requests of the members due by today — one transaction a
batch, the member row locked and linked to its request in the same transaction, so a crash loses
nothing and a rerun creates nothing twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from cms.callers import Caller
from cms.choices import CardStatus, ProductStatus, RequestKind, RequestStatus
from cms.models import Card, CardCertificate, CardRequest, Product, SitePool
from cms.services.requests import request_queue
from core.actors import Actor
from core.audit import audit_event_create
from core.dual_control import ActKind, act_request, register
from core.errors import BadInput, Conflict, NotFound
from core.models import DualControlAct
from core.roles import Role
from cps3.models import Cps3Card, Wave, WaveMember

LAUNCH = "cps3.wave_launch"


@dataclass(frozen=True, slots=True)
class WaveSpec:
    name: str
    pool_id: int
    daily_capacity: int
    start_on: dt.date
    professions: tuple[str, ...] = ()
    departements: tuple[str, ...] = ()
    expires_from: dt.date | None = None
    expires_to: dt.date | None = None
    product_id: int | None = None


def _audit(wave: Wave, actor: Actor, action: str, **details: Any) -> None:
    audit_event_create(
        actor=actor,
        action=f"cps3.wave.{action}",
        object_type="cps3_wave",
        object_id=str(wave.pk),
        details={"name": wave.name, "status": wave.status, **details},
    )


def _locked(wave_id: int) -> Wave:
    wave = Wave.objects.select_for_update().filter(pk=wave_id).first()
    if wave is None:
        raise NotFound(f"No wave #{wave_id}.")
    return wave


def _issued_product(product_id: int | None) -> Product:
    products = Product.objects.filter(status=ProductStatus.ISSUED)
    product = (
        products.filter(pk=product_id).first()
        if product_id
        else products.filter(name="CPS4").order_by("-created_at").first()
    )
    if product is None:
        raise BadInput("No issued CPS4 product: import the products first (import_products).")
    return product


def wave_create(*, spec: WaveSpec, user: AbstractBaseUser) -> Wave:
    """A draft wave, planned at once."""
    if spec.daily_capacity < 1:
        raise BadInput("The daily capacity is at least one card a day.")
    if spec.expires_from and spec.expires_to and spec.expires_from > spec.expires_to:
        raise BadInput("The CPS3 expiry range ends before it starts.")
    if not SitePool.objects.filter(pk=spec.pool_id).exists():
        raise NotFound(f"No site #{spec.pool_id}.")
    product = _issued_product(spec.product_id)
    with transaction.atomic():
        if Wave.objects.filter(name=spec.name).exists():
            raise Conflict(f"A wave named {spec.name!r} exists already.")
        wave = Wave.objects.create(
            name=spec.name,
            professions=sorted(set(spec.professions)),
            departements=sorted({d.upper() for d in spec.departements}),
            expires_from=spec.expires_from,
            expires_to=spec.expires_to,
            pool_id=spec.pool_id,
            product=product,
            daily_capacity=spec.daily_capacity,
            start_on=spec.start_on,
            created_by_id=user.pk,
        )
        _audit(wave, Actor.for_user(user), "create")
        _plan(wave)
    return wave


# Eligible CPS3 cards, in order of expiry; the row number gives the day. Holders with an identity
# or several-active exception wait for the exception to be cleared.
_PLAN = """
INSERT INTO cps3_wavemember (wave_id, cps3_card_id, holder_id, departement, planned_on, active)
SELECT %(wave)s, c.id, c.holder_id, c.departement,
       %(start)s::date + ((row_number() OVER (ORDER BY c.expires_on, c.id) - 1)
                          / %(capacity)s)::int,
       true
  FROM cps3_cps3card c
  JOIN cms_holder h ON h.id = c.holder_id AND h.status = 'active'
 WHERE c.status = 'active'
   AND (cardinality(%(professions)s::text[]) = 0 OR c.profession = ANY(%(professions)s::text[]))
   AND (cardinality(%(departements)s::text[]) = 0
        OR c.departement = ANY(%(departements)s::text[]))
   AND (%(expires_from)s::date IS NULL OR c.expires_on >= %(expires_from)s::date)
   AND (%(expires_to)s::date IS NULL OR c.expires_on <= %(expires_to)s::date)
   AND NOT EXISTS (SELECT FROM cps3_wavemember m
                    WHERE m.holder_id = c.holder_id AND m.active AND m.wave_id <> %(wave)s)
   AND NOT EXISTS (SELECT FROM cps3_cps3exception e
                    WHERE e.national_id = c.national_id
                      AND e.kind IN ('identity_conflict', 'several_active'))
   AND NOT EXISTS (SELECT FROM cms_card k JOIN cms_product p ON p.id = k.product_id
                    WHERE k.holder_id = c.holder_id AND p.status = 'issued'
                      AND k.status IN ('ALLOCATED', 'PERSONALIZING', 'ISSUED', 'ACTIVE',
                                       'SUSPENDED'))
"""


def _plan(wave: Wave) -> int:
    WaveMember.objects.filter(wave=wave).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            _PLAN,
            {
                "wave": wave.pk,
                "start": wave.start_on,
                "capacity": wave.daily_capacity,
                "professions": list(wave.professions),
                "departements": list(wave.departements),
                "expires_from": wave.expires_from,
                "expires_to": wave.expires_to,
            },
        )
        planned = int(cursor.rowcount)
    wave.planned = planned
    wave.save(update_fields=["planned"])
    _summary_refresh(wave)
    return planned


def wave_replan(*, wave_id: int, user: AbstractBaseUser) -> Wave:
    """Plan a draft wave again (the inventory or the other waves have changed)."""
    with transaction.atomic():
        wave = _locked(wave_id)
        if wave.status != Wave.Status.DRAFT:
            raise Conflict(f"Wave {wave.name} is {wave.status}: only a draft is planned again.")
        planned = _plan(wave)
        _audit(wave, Actor.for_user(user), "plan", planned=planned)
    return wave


def wave_preview(*, wave_id: int) -> dict[str, Any]:
    """Counts per day and per département, and what the site has to meet them."""
    wave = Wave.objects.filter(pk=wave_id).select_related("pool", "product").first()
    if wave is None:
        raise NotFound(f"No wave #{wave_id}.")
    members = WaveMember.objects.filter(wave=wave, active=True)
    days = list(members.values("planned_on").annotate(count=Count("id")).order_by("planned_on"))
    departements = list(
        members.values("departement").annotate(count=Count("id")).order_by("departement")
    )
    stock = Card.objects.filter(
        pool=wave.pool, product=wave.product, status=CardStatus.IN_STOCK
    ).count()
    stations = wave.pool.stations.filter(status="active").count()
    return {
        "wave": wave.pk,
        "site": wave.pool.code,
        "planned": wave.planned,
        "days": [{"day": d["planned_on"].isoformat(), "count": d["count"]} for d in days],
        "departements": [
            {"departement": d["departement"], "count": d["count"]} for d in departements
        ],
        "site_stock": stock,
        "site_stations": stations,
        "stock_short_by": max(0, wave.planned - stock),
    }


# --- launch under dual control, pause, resume, cancel ---------------------------------------


def wave_launch_request(*, wave_id: int, user: AbstractBaseUser, reason: str) -> DualControlAct:
    """Ask a second person to launch a planned draft wave."""
    with transaction.atomic():
        wave = _locked(wave_id)
        if wave.status != Wave.Status.DRAFT:
            raise Conflict(f"Wave {wave.name} is {wave.status}; only a draft is launched.")
        if wave.planned == 0:
            raise Conflict(f"Wave {wave.name} selects nobody; change its filters.")
        act = act_request(kind=LAUNCH, params={"wave": wave.pk}, user=user, reason=reason)
        wave.status = Wave.Status.AWAITING_APPROVAL
        wave.save(update_fields=["status"])
        _audit(wave, Actor.for_user(user), "launch_requested", act=act.pk)
    return act


def _launch_summary(params: Mapping[str, Any]) -> str:
    wave_id = params.get("wave")
    wave = Wave.objects.filter(pk=wave_id).first() if isinstance(wave_id, int) else None
    if wave is None:
        raise BadInput("No such wave.")
    return (
        f"Launch migration wave {wave.name}: {wave.planned} holders at {wave.pool.code}, "
        f"{wave.daily_capacity} a day from {wave.start_on}"
    )


def _launch(act: DualControlAct, requester: Actor, approver: Actor) -> dict[str, Any]:
    wave = _locked(int(act.params["wave"]))
    if wave.status != Wave.Status.AWAITING_APPROVAL:
        raise Conflict(f"Wave {wave.name} is {wave.status}; it is not waiting for approval.")
    wave.status = Wave.Status.RUNNING
    wave.approved_by_id = int(approver.id)  # the act records its decider after the handler
    wave.launched_at = timezone.now()
    wave.save(update_fields=["status", "approved_by", "launched_at"])
    _audit(wave, approver, "launched", requested_by=requester.label, act=act.pk)
    _enqueue(wave.pk)
    return {"wave": wave.pk, "planned": wave.planned}


register(
    ActKind(
        name=LAUNCH,
        role=Role.ISSUANCE_OPERATOR,
        label="Launch a CPS3 → CPS4 migration wave",
        handler=_launch,
        validate=_launch_summary,
    )
)


def _enqueue(wave_id: int) -> None:
    from cps3.tasks import wave_advance_task

    transaction.on_commit(lambda: wave_advance_task.delay(wave_id))


def wave_set_status(*, wave_id: int, user: AbstractBaseUser, action: str) -> Wave:
    """``pause`` a running wave, ``resume`` a paused one, ``cancel`` a wave not finished (its
    members without a request leave it; requests already made stay)."""
    moves = {
        "pause": ((Wave.Status.RUNNING,), Wave.Status.PAUSED),
        "resume": ((Wave.Status.PAUSED,), Wave.Status.RUNNING),
        "cancel": (
            (Wave.Status.DRAFT, Wave.Status.AWAITING_APPROVAL, Wave.Status.RUNNING,
             Wave.Status.PAUSED),
            Wave.Status.CANCELLED,
        ),
    }  # fmt: skip
    if action not in moves:
        raise BadInput(f"Unknown action {action!r}; use pause, resume or cancel.")
    sources, target = moves[action]
    with transaction.atomic():
        wave = _locked(wave_id)
        if wave.status not in sources:
            raise Conflict(f"Wave {wave.name} is {wave.status}: it cannot {action}.")
        wave.status = target
        if target == Wave.Status.CANCELLED:
            wave.finished_at = timezone.now()
            # A launch still waiting for its second person is refused when approved (the
            # handler sees the wave cancelled) and then expires.
            left = WaveMember.objects.filter(wave=wave, request__isnull=True).update(active=False)
        else:
            left = 0
        wave.save(update_fields=["status", "finished_at"])
        _audit(wave, Actor.for_user(user), action, members_left=left)
        if target == Wave.Status.RUNNING:
            _enqueue(wave.pk)
    return wave


# --- the advance task's work ----------------------------------------------------------------


def _legacy_product() -> Product:
    product = Product.objects.filter(name="CPS3", status=ProductStatus.LEGACY).first()
    if product is None:
        raise Conflict("The legacy CPS3 product is not in the registry: run import_products.")
    return product


def _legacy_card(member: WaveMember, product: Product, now: dt.datetime) -> Card:
    """The member's CPS3 in the registry (created on its first request), in overlap: it stays in
    service beside the CPS4 until the hand-over."""
    cps3: Cps3Card = member.cps3_card
    card = Card.objects.filter(chip_serial=cps3.chip_serial).first()
    if card is None:
        end = dt.datetime.combine(cps3.expires_on, dt.time(23, 59, 59), tzinfo=dt.UTC)
        card = Card.objects.create(
            chip_serial=cps3.chip_serial,
            product=product,
            holder_id=member.holder_id,
            card_type=cps3.card_type,
            status=CardStatus.ACTIVE,
            migration_overlap=True,
            issued_at=dt.datetime.combine(cps3.issued_on, dt.time(0, 0), tzinfo=dt.UTC),
            activated_at=dt.datetime.combine(cps3.issued_on, dt.time(0, 0), tzinfo=dt.UTC),
            expires_at=end,
            status_changed_at=now,
        )
        for slot in ("auth", "sign"):
            certificate_id = getattr(cps3, f"{slot}_certificate_id")
            if certificate_id is not None:
                CardCertificate.objects.create(card=card, slot=slot, certificate_id=certificate_id)
    elif not card.migration_overlap:
        card.migration_overlap = True
        card.save(update_fields=["migration_overlap"])
    return card


def wave_advance(*, wave_id: int, today: dt.date | None = None, batch_size: int = 500) -> int:
    """Create the requests of the members due by ``today``, a batch a transaction; returns how
    many were created. Stops when the wave is no longer running."""
    today = today or timezone.localdate()
    created = 0
    while True:
        with transaction.atomic():
            wave = _locked(wave_id)
            if wave.status != Wave.Status.RUNNING:
                return created
            members = list(
                WaveMember.objects.select_for_update(skip_locked=True)
                .filter(wave=wave, active=True, request__isnull=True, planned_on__lte=today)
                .select_related("cps3_card")
                .order_by("planned_on", "id")[:batch_size]
            )
            if not members:
                if not WaveMember.objects.filter(wave=wave, active=True, request__isnull=True):
                    wave.status = Wave.Status.COMPLETED
                    wave.finished_at = timezone.now()
                    wave.save(update_fields=["status", "finished_at"])
                    _audit(wave, Actor.system("cps3-waves"), "completed")
                return created
            _requests_for(wave, members)
            created += len(members)
    return created


def _requests_for(wave: Wave, members: list[WaveMember]) -> None:
    now = timezone.now()
    legacy = _legacy_product()
    actor = Actor.system(f"cps3 wave {wave.name}")
    caller = Caller.for_system(f"cps3 wave {wave.name}")
    requester = wave.created_by.get_username() if wave.created_by else "?"
    approver = wave.approved_by.get_username() if wave.approved_by else "?"
    stock_left = True  # until the site runs out of blank cards in this batch
    for member in members:
        card = _legacy_card(member, legacy, now)
        open_request = CardRequest.objects.filter(
            holder_id=member.holder_id,
            kind=RequestKind.MIGRATION,
            product=wave.product,
            status__in=(
                RequestStatus.DRAFT, RequestStatus.SUBMITTED, RequestStatus.APPROVED,
                RequestStatus.QUEUED, RequestStatus.PERSONALIZING, RequestStatus.FAILED,
            ),
        ).first()  # fmt: skip
        request = open_request or CardRequest.objects.create(
            kind=RequestKind.MIGRATION,
            status=RequestStatus.APPROVED,
            holder_id=member.holder_id,
            product=wave.product,
            replaces=card,
            pool_id=wave.pool_id,
            requires_second_approval=True,
            requested_by_id=wave.created_by_id,
            requested_by_label=requester,
            approved_by_id=wave.approved_by_id,
            note=f"migration wave {wave.name}",
            submitted_at=now,
            decided_at=now,
        )
        member.request = request
        member.save(update_fields=["request"])
        audit_event_create(
            actor=actor,
            action="request.create",
            object_type="card_request",
            object_id=str(request.pk),
            details={
                "kind": RequestKind.MIGRATION.value,
                "status": request.status,
                "wave": wave.name,
                "replaces": card.chip_serial,
                "requested_by": requester,
                "approved_by": approver,
            },
        )
        if stock_left and request.status == RequestStatus.APPROVED:
            try:
                with transaction.atomic():
                    request_queue(request_id=request.pk, caller=caller)
            except Conflict:
                stock_left = False  # no blank card left at the site: queued later by operators


# --- the dashboard's numbers ----------------------------------------------------------------

_SUMMARY = """
INSERT INTO cps3_wavesummary (wave_id, departement, planned, requested, personalized, activated,
       cps3_revoked, refreshed_at)
SELECT m.wave_id, m.departement, count(*) FILTER (WHERE m.active),
       count(r.id),
       count(*) FILTER (WHERE r.status = 'done'),
       count(*) FILTER (WHERE k.status IN ('ACTIVE', 'SUSPENDED', 'REVOKED', 'EXPIRED')
                          AND k.activated_at IS NOT NULL),
       count(*) FILTER (WHERE old.status IN ('REVOKED', 'DESTROYED')),
       now()
  FROM cps3_wavemember m
  LEFT JOIN cms_cardrequest r ON r.id = m.request_id
  LEFT JOIN cms_card k ON k.id = r.card_id
  LEFT JOIN cms_card old ON old.id = r.replaces_id
 WHERE m.wave_id = ANY(%(waves)s)
 GROUP BY m.wave_id, m.departement
ON CONFLICT (wave_id, departement) DO UPDATE SET planned = EXCLUDED.planned,
       requested = EXCLUDED.requested, personalized = EXCLUDED.personalized,
       activated = EXCLUDED.activated, cps3_revoked = EXCLUDED.cps3_revoked,
       refreshed_at = EXCLUDED.refreshed_at
"""


def _summary_refresh(wave: Wave) -> None:
    summaries_refresh(wave_ids=[wave.pk])


def summaries_refresh(*, wave_ids: list[int] | None = None) -> int:
    """Recount the summary rows of the given waves (all live ones by default), one statement,
    and record today's progress snapshot. Returns the number of waves refreshed."""
    if wave_ids is None:
        wave_ids = list(
            Wave.objects.exclude(status=Wave.Status.DRAFT)
            .filter(
                Q(finished_at__isnull=True)
                | Q(finished_at__gte=timezone.now() - dt.timedelta(days=30))
            )
            .values_list("pk", flat=True)
        )
    if not wave_ids:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM cps3_wavesummary WHERE wave_id = ANY(%(waves)s)", {"waves": wave_ids}
        )
        cursor.execute(_SUMMARY, {"waves": wave_ids})
        cursor.execute(
            """
            INSERT INTO cps3_waveprogress (wave_id, day, planned, requested, personalized,
                   activated, cps3_revoked)
            SELECT wave_id, current_date, sum(planned), sum(requested), sum(personalized),
                   sum(activated), sum(cps3_revoked)
              FROM cps3_wavesummary WHERE wave_id = ANY(%(waves)s) GROUP BY wave_id
            ON CONFLICT (wave_id, day) DO UPDATE SET planned = EXCLUDED.planned,
                   requested = EXCLUDED.requested, personalized = EXCLUDED.personalized,
                   activated = EXCLUDED.activated, cps3_revoked = EXCLUDED.cps3_revoked
            """,
            {"waves": wave_ids},
        )
    return len(wave_ids)
