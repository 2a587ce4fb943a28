from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import View
from django.views.generic import TemplateView

from console.access import RoleRequiredMixin
from console.home import waiting_for
from console.login_limit import LimitedAuthenticationForm
from console.pages.base import caller_of
from core.audit import audit_chain_verify, audit_event_count, audit_event_create, audit_event_list
from core.filtersets import AuditEventFilter
from core.roles import Role, roles_of


class LoginView(auth_views.LoginView):
    """Sign-in with a failed-attempt limit per user name and per client address."""

    template_name = "console/login.html"
    authentication_form = LimitedAuthenticationForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        form = context.get("form")
        context["rate_limited"] = bool(
            form is not None and form.has_error("__all__", "rate_limited")
        )
        return context


class HomeView(RoleRequiredMixin, TemplateView):
    """What waits for me: per role, counts that link to the lists where the work is."""

    roles = tuple(Role)
    template_name = "console/home.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        roles = roles_of(self.request.user)
        return {
            **super().get_context_data(**kwargs),
            "roles": sorted(role.label for role in roles),
            "tiles": waiting_for(roles, self.request.user.pk),
        }


class AuditVerifyView(RoleRequiredMixin, View):
    """POST: walk the audit chain (``audit_verify``'s logic) and show the result in place; the
    check is itself recorded as an audit event, with the head it found."""

    roles = (Role.AUDITOR, Role.SECURITY_OFFICER)
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        report = audit_chain_verify()
        details: dict[str, object] = {
            "checked": report.checked,
            "head_seq": report.head_seq,
            "head_hash": report.head_hash,
            "ok": report.ok,
        }
        if report.first_break is not None:
            details["break_seq"] = report.first_break.seq
            details["break_reason"] = report.first_break.reason
        with transaction.atomic():
            audit_event_create(
                actor=caller_of(request).actor,
                action="audit.verify",
                object_type="audit_chain",
                object_id="main",
                details=details,
            )
        return render(request, "console/_audit_verify.html", {"report": report})


class AuditView(RoleRequiredMixin, TemplateView):
    """The audit log, newest first, filtered as the API filters it; the filter form swaps the table
    in place through htmx. Pages are keyset pages on ``seq`` (no COUNT(*) of a growing table)."""

    roles = (Role.AUDITOR, Role.SECURITY_OFFICER)
    page_size = 50

    def get_template_names(self) -> list[str]:
        if self.request.headers.get("HX-Request"):
            return ["console/_audit_table.html"]
        return ["console/audit.html"]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        before = self.request.GET.get("before", "")
        before_seq = int(before) if before.isdigit() else None
        filterset = AuditEventFilter(
            self.request.GET, queryset=audit_event_list(before_seq=before_seq)
        )
        valid = filterset.is_valid()
        rows = list(filterset.qs[: self.page_size + 1]) if valid else []
        older = rows[self.page_size - 1].seq if len(rows) > self.page_size else None
        query = self.request.GET.copy()
        query.pop("before", None)
        return {
            **super().get_context_data(**kwargs),
            "events": rows[: self.page_size],
            "errors": None if valid else filterset.errors,
            "action": self.request.GET.get("action", ""),
            "object_id": self.request.GET.get("object_id", ""),
            "object_type": self.request.GET.get("object_type", ""),
            "older": older,
            "filters": query.urlencode(),
            "paged": bool(before),
            "total": audit_event_count(),
        }
