"""The migration dashboard's numbers, read from the summary rows (``cps3.waves.summaries_refresh``
keeps them), never counted over the registry's millions of rows on a page view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Count, Sum

from cps3.choices import ExceptionKind
from cps3.models import Cps3Exception, WaveProgress, WaveSummary

COUNTERS = ("planned", "requested", "personalized", "activated", "cps3_revoked")


def dashboard(wave_id: int | None = None) -> dict[str, object]:
    """The numbers from the summary rows (kept by the wave services and the periodic refresh),
    per wave and per département, and the exceptions by kind."""
    summaries = WaveSummary.objects.all()
    progress = WaveProgress.objects.all()
    if wave_id is not None:
        summaries = summaries.filter(wave_id=wave_id)
        progress = progress.filter(wave_id=wave_id)
    sums = {name: Sum(name) for name in COUNTERS}
    totals = summaries.aggregate(**sums)
    per_wave = summaries.values("wave_id", "wave__name", "wave__status").annotate(**sums)
    per_dept = summaries.values("departement").annotate(**sums).order_by("departement")
    series = progress.values("day").annotate(**sums).order_by("day")
    kinds = dict(Cps3Exception.objects.values_list("kind").annotate(n=Count("id")))
    return {
        "totals": _counts(totals),
        "waves": [
            {"id": w["wave_id"], "name": w["wave__name"], "status": w["wave__status"], **_counts(w)}
            for w in per_wave.order_by("wave_id")
        ],
        "departements": [{"departement": d["departement"], **_counts(d)} for d in per_dept],
        "exceptions": {kind: kinds.get(kind, 0) for kind in ExceptionKind.values},
        "progress": [{"day": p["day"].isoformat(), **_counts(p)} for p in series],
    }


def _counts(row: Mapping[str, Any]) -> dict[str, int]:
    return {name: int(row.get(name) or 0) for name in COUNTERS}
