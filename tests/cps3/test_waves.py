"""Migration waves: planning, dual-control launch, daily requests, crash-safe advance, hand-over."""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from cms.callers import Caller
from cms.choices import CardStatus, RequestKind, RequestStatus
from cms.models import Card, CardRequest, SitePool
from cms.services.cards import card_transition
from cms.services.holder_import import holder_import
from core.actors import Actor
from core.dual_control import act_approve
from core.errors import Conflict, Forbidden
from cps3 import waves
from cps3.generator import Rates, csv_bytes, export_rows, holder_rows
from cps3.handover import handover_sweep
from cps3.inventory import cps3_import
from cps3.models import Cps3Exception, Wave, WaveMember, WaveSummary
from cps3.waves import WaveSpec, wave_advance, wave_create, wave_launch_request, wave_preview

pytestmark = pytest.mark.django_db

NO_ANOMALY = Rates(**dict.fromkeys(Rates.__dataclass_fields__, 0.0))
TODAY = dt.date.today()  # the launch advances to the real today


@pytest.fixture
def inventory(cps3: Any, cps4: Any) -> int:
    """100 professionals in the registry and in the CPS3 export, some (about 5) with an identity
    conflict; returns how many a wave may plan."""
    rates = Rates(
        **{name: 0.0 for name in Rates.__dataclass_fields__} | {"identity_conflict": 0.05}
    )
    holder_import(
        content=csv_bytes(holder_rows(100, seed=3, rates=rates)), caller=Caller.for_system("t")
    )
    content = csv_bytes(export_rows(100, seed=3, rates=rates, today=TODAY))
    cps3_import(
        stream=io.BytesIO(content), filename="e.csv", size=len(content), actor=Actor.system("t")
    )
    conflicts = Cps3Exception.objects.filter(kind="identity_conflict")
    assert conflicts.exists()
    return 100 - conflicts.values("national_id").distinct().count()


@pytest.fixture
def site() -> SitePool:
    return SitePool.objects.create(code="paris", name="Paris")


@pytest.fixture
def leads(make_user: Any) -> tuple[Any, Any]:
    return make_user("issuance_operator"), make_user("issuance_operator")


def _wave(site: SitePool, lead: Any, **spec: Any) -> Wave:
    values = {"name": "w1", "pool_id": site.pk, "daily_capacity": 10, "start_on": TODAY} | spec
    return wave_create(spec=WaveSpec(**values), user=lead)


def _launch(wave: Wave, leads: tuple[Any, Any], on_commit: Any = None) -> Wave:
    act = wave_launch_request(wave_id=wave.pk, user=leads[0], reason="national plan, wave 1")
    with pytest.raises(Forbidden, match="second person"):
        act_approve(act_id=act.pk, user=leads[0])
    if on_commit is None:
        act_approve(act_id=act.pk, user=leads[1])
    else:
        with on_commit(execute=True):
            act_approve(act_id=act.pk, user=leads[1])
    wave.refresh_from_db()
    return wave


def test_planning_selects_the_eligible_holders_at_the_daily_rate(
    inventory: int, site: Any, leads: Any
) -> None:
    wave = _wave(site, leads[0])
    members = WaveMember.objects.filter(wave=wave)
    # Holders with an identity conflict wait for it to be cleared.
    assert wave.planned == members.count() == inventory
    per_day = Counter(members.values_list("planned_on", flat=True))
    assert max(per_day.values()) == 10 and min(per_day) == TODAY
    # In order of CPS3 expiry: nobody planned after a card that expires later.
    ordered = list(
        members.order_by("planned_on", "cps3_card__expires_on").values_list(
            "cps3_card__expires_on", flat=True
        )
    )
    assert ordered == sorted(ordered)
    preview = wave_preview(wave_id=wave.pk)
    assert sum(d["count"] for d in preview["days"]) == inventory and len(preview["days"]) == -(
        -inventory // 10
    )
    assert preview["site_stock"] == 0 and preview["stock_short_by"] == inventory
    # A second wave over the same holders finds nobody left.
    assert _wave(site, leads[0], name="w2").planned == 0
    # Filters: one département.
    dept = members.values_list("departement", flat=True).first()
    wave.status = Wave.Status.CANCELLED
    WaveMember.objects.filter(wave=wave).update(active=False)
    wave.save()
    narrow = _wave(site, leads[0], name="w3", departements=(dept,))
    assert 0 < narrow.planned < inventory
    assert set(WaveMember.objects.filter(wave=narrow).values_list("departement", flat=True)) == {
        dept
    }


def test_a_wave_runs_only_after_a_second_person_approves(
    inventory: int, site: Any, leads: Any, django_capture_on_commit_callbacks: Any
) -> None:
    wave = _wave(site, leads[0])
    assert wave_advance(wave_id=wave.pk, today=TODAY) == 0  # a draft creates nothing
    wave = _launch(wave, leads, django_capture_on_commit_callbacks)
    assert wave.status == Wave.Status.RUNNING and wave.approved_by == leads[1]
    # The launch ran the advance (tasks are eager in tests): today's members have requests.
    requested = CardRequest.objects.filter(kind=RequestKind.MIGRATION)
    due = WaveMember.objects.filter(wave=wave, planned_on__lte=timezone.localdate()).count()
    assert requested.count() == due
    first = requested.first()
    assert (
        first is not None
        and first.approved_by == leads[1]
        and first.status == RequestStatus.APPROVED
    )
    legacy = first.replaces
    assert legacy is not None and legacy.product.name == "CPS3" and legacy.migration_overlap
    # Day by day, never ahead of the plan.
    later = wave_advance(wave_id=wave.pk, today=TODAY + dt.timedelta(days=2))
    assert (
        requested.count()
        == WaveMember.objects.filter(
            wave=wave, planned_on__lte=TODAY + dt.timedelta(days=2)
        ).count()
    )
    assert later >= 0
    wave_advance(wave_id=wave.pk, today=TODAY + dt.timedelta(days=30))
    wave.refresh_from_db()
    assert wave.status == Wave.Status.COMPLETED and requested.count() == inventory
    summary = WaveSummary.objects.filter(wave=wave)
    waves.summaries_refresh(wave_ids=[wave.pk])
    assert (
        sum(s.requested for s in summary) == inventory
        and sum(s.planned for s in summary) == inventory
    )


def test_pause_resume_and_cancel(inventory: int, site: Any, leads: Any) -> None:
    wave = _launch(_wave(site, leads[0], start_on=TODAY + dt.timedelta(days=400)), leads)
    waves.wave_set_status(wave_id=wave.pk, user=leads[0], action="pause")
    assert wave_advance(wave_id=wave.pk, today=TODAY + dt.timedelta(days=500)) == 0
    with pytest.raises(Conflict):
        waves.wave_set_status(wave_id=wave.pk, user=leads[0], action="pause")
    waves.wave_set_status(wave_id=wave.pk, user=leads[0], action="cancel")
    assert not WaveMember.objects.filter(wave=wave, active=True).exists()
    assert not CardRequest.objects.exists()
    # The holders are free for another wave.
    assert _wave(site, leads[0], name="again").planned == inventory


def test_a_crash_mid_advance_and_a_rerun_give_the_same_requests(
    inventory: int, site: Any, leads: Any, monkeypatch: Any
) -> None:
    wave = _wave(site, leads[0], start_on=TODAY + dt.timedelta(days=400))
    wave = _launch(wave, leads)
    real = waves._requests_for
    calls = {"n": 0}

    def crashing(wave_obj: Any, members: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            real(wave_obj, members[:3])  # part of the batch written, then the process dies
            raise SystemExit("killed")
        real(wave_obj, members)

    monkeypatch.setattr(waves, "_requests_for", crashing)
    with pytest.raises(SystemExit):
        wave_advance(wave_id=wave.pk, today=TODAY + dt.timedelta(days=500), batch_size=20)
    made = CardRequest.objects.count()
    assert made == 40  # two whole batches; the third rolled back with the crash
    monkeypatch.setattr(waves, "_requests_for", real)
    wave_advance(wave_id=wave.pk, today=TODAY + dt.timedelta(days=500), batch_size=20)
    holders = list(CardRequest.objects.values_list("holder_id", flat=True))
    assert len(holders) == len(set(holders)) == inventory
    assert set(holders) == set(
        WaveMember.objects.filter(wave=wave).values_list("holder_id", flat=True)
    )


@pytest.mark.parametrize(
    "events",
    [
        ("activate", "grace", "sweep"),
        ("activate", "revoke_new", "grace", "sweep"),
        ("activate", "suspend_new", "grace", "sweep"),
        ("grace", "sweep"),
        ("activate", "sweep", "grace"),
        ("activate", "grace", "revoke_new", "sweep"),
    ],
)
def test_the_holder_always_keeps_a_working_card(
    cps3: Any, cps4: Any, events: tuple[str, ...], make_user: Any
) -> None:
    from tests.cms.conftest import card_make, holder_make

    holder = holder_make()
    old = card_make(cps3, CardStatus.ACTIVE, holder)
    Card.objects.filter(pk=old.pk).update(migration_overlap=True)
    new = card_make(cps4, CardStatus.ISSUED, holder)
    CardRequest.objects.create(
        kind=RequestKind.MIGRATION,
        status=RequestStatus.DONE,
        holder=holder,
        product=cps4,
        replaces=old,
        card=new,
        requested_by_label="t",
    )
    officer = Caller.for_user(make_user("security_officer"))
    operator = Caller.for_user(make_user("issuance_operator"))
    now = timezone.now()
    for event in events:
        if event == "activate":
            card_transition(card_id=new.pk, transition="activate", caller=operator)
        elif event == "revoke_new":
            card_transition(card_id=new.pk, transition="revoke", caller=officer, reason="lost")
        elif event == "suspend_new":
            card_transition(card_id=new.pk, transition="suspend", caller=officer)
        elif event == "grace":
            now += dt.timedelta(days=31)
        elif event == "sweep":
            with time_machine.travel(now, tick=False):
                handover_sweep()
        working = Card.objects.filter(holder=holder, status=CardStatus.ACTIVE).count()
        assert working >= 1, f"no working card after {event} in {events}"
    old.refresh_from_db()
    new.refresh_from_db()
    expect_revoked = new.status == CardStatus.ACTIVE and "sweep" in events[events.index("grace") :]
    assert (old.status == CardStatus.REVOKED) == expect_revoked
    if expect_revoked:
        assert old.revoke_reason == "superseded"
    assert Card.objects.filter(holder=holder, status=CardStatus.ACTIVE).exists()
