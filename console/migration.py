"""Console pages of the CPS3 → CPS4 migration: the dashboard, the exceptions report, a wave with
its preview and its actions (launch for a second person, approve, pause, resume, cancel)."""

from __future__ import annotations

import io
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.generic import TemplateView, View

from console.access import RoleRequiredMixin
from core.dual_control import act_approve, act_refuse
from core.errors import ApplicationError
from core.models import DualControlAct
from core.roles import Role
from cps3.choices import ExceptionKind
from cps3.dashboard import dashboard
from cps3.inventory import exceptions_csv
from cps3.models import Cps3Exception, Cps3Import, Wave
from cps3.waves import LAUNCH, wave_launch_request, wave_preview, wave_set_status

READERS = (Role.ISSUANCE_OPERATOR, Role.SECURITY_OFFICER, Role.AUDITOR)


class MigrationDashboardView(RoleRequiredMixin, TemplateView):
    """Per wave and overall: planned, requested, personalized, activated, CPS3 revoked, the
    exceptions, the progress over time and a table per département."""

    roles = READERS
    template_name = "console/migration/dashboard.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        raw = self.request.GET.get("wave", "")
        wave = Wave.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
        numbers = dashboard(wave.pk if wave else None)
        progress = numbers["progress"]
        assert isinstance(progress, list)
        top = max([p["planned"] for p in progress] + [1])
        chart = [
            {**p, "bars": {k: round(160 * p[k] / top) for k in ("requested", "activated")}}
            for p in progress[-60:]
        ]
        return {
            **super().get_context_data(**kwargs),
            "numbers": numbers,
            "wave": wave,
            "waves": Wave.objects.select_related("pool").order_by("-created_at")[:50],
            "chart": chart,
            "last_import": Cps3Import.objects.first(),
            "exception_kinds": ExceptionKind.choices,
        }


class MigrationExceptionsView(RoleRequiredMixin, TemplateView):
    """The reconciliation's exceptions, by kind, paged; the CSV is a download."""

    roles = READERS
    template_name = "console/migration/exceptions.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        kind = self.request.GET.get("kind", "")
        rows = Cps3Exception.objects.order_by("kind", "line", "id")
        if kind in ExceptionKind.values:
            rows = rows.filter(kind=kind)
        page = Paginator(rows, 50).get_page(self.request.GET.get("page"))
        return {
            **super().get_context_data(**kwargs),
            "page": page,
            "kind": kind,
            "kinds": ExceptionKind.choices,
        }


class MigrationExceptionsCsvView(RoleRequiredMixin, View):
    """The whole exceptions report as a CSV download."""

    roles = READERS

    def get(self, request: HttpRequest) -> HttpResponse:
        out = io.StringIO()
        exceptions_csv(out)
        response = HttpResponse(out.getvalue().encode("utf-8"), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="cps3-exceptions.csv"'
        return response


class WaveView(RoleRequiredMixin, TemplateView):
    """A wave: its filters, its preview per day and département, and the actions the signed-in
    person may take (a second issuance operator approves the launch here)."""

    roles = READERS
    template_name = "console/migration/wave.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        wave = get_object_or_404(Wave.objects.select_related("pool"), pk=kwargs["wave_id"])
        pending = DualControlAct.objects.filter(
            kind=LAUNCH, params__wave=wave.pk, status=DualControlAct.Status.PENDING
        ).first()
        return {
            **super().get_context_data(**kwargs),
            "wave": wave,
            "preview": wave_preview(wave_id=wave.pk),
            "pending": pending,
            "lead": Role.ISSUANCE_OPERATOR in self.request_roles(),
        }

    def request_roles(self) -> frozenset[Role]:
        from core.roles import roles_of

        return roles_of(self.request.user)

    def post(self, request: HttpRequest, wave_id: int) -> HttpResponse:
        if Role.ISSUANCE_OPERATOR not in self.request_roles():
            return HttpResponse(status=403)
        # The confirmation dialogs send "decision" (console/_action.html); the launch form "action".
        action = request.POST.get("decision") or request.POST.get("action", "")
        user = request.user
        assert user.is_authenticated
        try:
            if action == "launch":
                wave_launch_request(
                    wave_id=wave_id, user=user, reason=request.POST.get("reason", "")
                )
                messages.success(request, _("Launch asked: a second issuance operator approves."))
            elif action in ("approve", "refuse"):
                act_id = int(request.POST.get("act", "0") or 0)
                if action == "approve":
                    act_approve(act_id=act_id, user=user)
                    messages.success(request, _("Wave launched."))
                else:
                    act_refuse(act_id=act_id, user=user, note=request.POST.get("note", ""))
                    messages.success(request, _("Launch refused."))
            elif action in ("pause", "resume", "cancel"):
                wave_set_status(wave_id=wave_id, user=user, action=action)
                messages.success(request, _("Done."))
            else:
                messages.error(request, _("Unknown action."))
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("console:migration-wave", args=[wave_id]))
