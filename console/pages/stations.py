"""Personalization stations: list (last seen, current job, cards per hour today), a station's
recent sessions and failures, create one (its one-time enrollment code shown once, on the answer
to the POST, never stored in clear nor shown again) and disable one (security officers)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cms.models import PersonalizationSession, Station
from cms.personalization.choices import SessionStatus
from cms.personalization.stations import station_create, station_disable, station_list
from cms.selectors import pool_list
from console.pages.base import ConsolePage, caller_of, refused
from core.errors import ApplicationError, NotFound
from core.roles import Role

READERS = (Role.SECURITY_OFFICER, Role.ISSUANCE_OPERATOR, Role.AUDITOR)
MANAGERS = (Role.SECURITY_OFFICER,)
FAILED = (
    SessionStatus.WIPED,
    SessionStatus.SPOILED,
    SessionStatus.INTERRUPTED,
    SessionStatus.ABORTED,
)


def _today_start() -> dt.datetime:
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def station_rows() -> list[dict[str, Any]]:
    start = _today_start()
    hours = max((timezone.now() - start).total_seconds() / 3600, 1.0)
    rows = []
    for station in station_list().select_related("site"):
        sessions = PersonalizationSession.objects.filter(station=station)
        done_today = sessions.filter(status=SessionStatus.DONE, ended_at__gte=start).count()
        rows.append(
            {
                "station": station,
                "current": sessions.filter(status=SessionStatus.RUNNING)
                .select_related("card")
                .first(),
                "done_today": done_today,
                "per_hour": round(done_today / hours, 1),
                "failed_today": sessions.filter(status__in=FAILED, updated_at__gte=start).count(),
            }
        )
    return rows


class StationListView(ConsolePage):
    roles = READERS
    template_name = "console/stations/list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {
            **super().get_context_data(**kwargs),
            "rows": station_rows(),
            "sites": pool_list(),
            "may_manage": Role.SECURITY_OFFICER in caller_of(self.request).roles,
        }


class StationCreateView(ConsolePage):
    """POST site + name: the station and its enrollment code, shown on this answer only."""

    roles = MANAGERS
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            issued = station_create(
                site_code=request.POST.get("site", ""),
                name=request.POST.get("name", ""),
                caller=caller_of(request),
            )
        except ApplicationError as exc:
            refused(request, exc)
            return HttpResponseRedirect(reverse("console:stations"))
        response = render(request, "console/stations/code.html", {"issued": issued})
        response["Cache-Control"] = "no-store"
        return response


class StationView(ConsolePage):
    roles = READERS
    template_name = "console/stations/detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        station = (
            Station.objects.select_related("site").filter(pk=self.kwargs["station_id"]).first()
        )
        if station is None:
            raise NotFound(f"No station {self.kwargs['station_id']}.")
        sessions = PersonalizationSession.objects.filter(station=station).select_related("card")
        return {
            **super().get_context_data(**kwargs),
            "station": station,
            "sessions": sessions.order_by("-started_at")[:20],
            "failures": sessions.filter(status__in=FAILED).order_by("-updated_at")[:20],
            "may_manage": Role.SECURITY_OFFICER in caller_of(self.request).roles,
        }


class StationDisableView(ConsolePage):
    roles = MANAGERS
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        station_id = self.kwargs["station_id"]
        try:
            station_disable(
                station_id=station_id, caller=caller_of(request), note=request.POST.get("note", "")
            )
        except ApplicationError as exc:
            refused(request, exc)
        else:
            messages.success(request, _("Station disabled: its next call is refused."))
        return HttpResponseRedirect(reverse("console:station", args=[station_id]))
