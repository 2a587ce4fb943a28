"""Console: the contactless side (relying parties and the signed deny list): the list's size,
its newest version and publication, the latest publications, and the relying parties with their
exports. Reading only; the acts (register, export under dual control, withdraw) are in the API."""

from __future__ import annotations

from typing import Any

from django.views.generic import TemplateView

from cms.contactless.selectors import deny_list_full_latest
from cms.models import DenyListEntry, DenyListPublication, RelyingParty
from console.access import RoleRequiredMixin
from core.roles import Role


class ContactlessView(RoleRequiredMixin, TemplateView):
    roles = (Role.SECURITY_OFFICER, Role.AUDITOR)
    template_name = "console/contactless/overview.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {
            **super().get_context_data(**kwargs),
            "denied": DenyListEntry.objects.count(),
            "latest": deny_list_full_latest(),
            "publications": list(DenyListPublication.objects.order_by("-version", "kind")[:20]),
            "parties": list(RelyingParty.objects.order_by("name").prefetch_related("exports")),
        }
