from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.core.paginator import Paginator
from django.views.generic import TemplateView

from console.access import RoleRequiredMixin
from console.login_limit import LimitedAuthenticationForm
from console.sections import sections_for
from core.audit import audit_event_list
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
    roles = tuple(Role)
    template_name = "console/home.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        roles = roles_of(self.request.user)
        return {
            **super().get_context_data(**kwargs),
            "roles": sorted(role.label for role in roles),
            "sections": sections_for(roles),
        }


class AuditView(RoleRequiredMixin, TemplateView):
    """The audit log; the filter form swaps the table in place through htmx."""

    roles = (Role.AUDITOR, Role.SECURITY_OFFICER)
    page_size = 50

    def get_template_names(self) -> list[str]:
        if self.request.headers.get("HX-Request"):
            return ["console/_audit_table.html"]
        return ["console/audit.html"]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        events = audit_event_list()
        action = self.request.GET.get("action", "").strip()
        object_id = self.request.GET.get("object_id", "").strip()
        if action:
            events = events.filter(action__startswith=action)
        if object_id:
            events = events.filter(object_id=object_id)
        page = Paginator(events, self.page_size).get_page(self.request.GET.get("page"))
        return {
            **super().get_context_data(**kwargs),
            "page": page,
            "action": action,
            "object_id": object_id,
            "sections": sections_for(roles_of(self.request.user)),
        }
