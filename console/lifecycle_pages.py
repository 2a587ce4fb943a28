"""Console pages after issuance (issue 15): report a lost card, the renewal campaign, renewals
on the card in progress or interrupted (and abandoning one), bulk revocations and their
progress. Each page declares its roles, as every API view does."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView

from cms.callers import Caller
from cms.choices import LossReason
from cms.models import BulkRevocation, Card, RenewalInvitation
from cms.personalization.renewal import ABANDON_ROLES, renewal_abandon, renewal_list_open
from cms.services.expiry import campaign
from cms.services.replacement import card_report_loss
from console.access import RoleRequiredMixin
from console.pages.base import ConsolePage, caller_of, refused
from core.errors import ApplicationError
from core.roles import Role


class LossReportForm(forms.Form):
    card_number = forms.CharField(label=_("Card number"), max_length=20)
    reason = forms.ChoiceField(label=_("Reason"), choices=LossReason.choices)
    identity_check = forms.CharField(
        label=_("How the holder's identity was checked"), max_length=200
    )


class CardReportLossView(RoleRequiredMixin, TemplateView):
    """One action for a lost, stolen or damaged card (cms.services.replacement)."""

    roles = (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT)
    template_name = "console/after_issuance/report_loss.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {"form": LossReportForm(), **super().get_context_data(**kwargs)}

    def post(self, request: HttpRequest) -> HttpResponse:
        form = LossReportForm(request.POST)
        context: dict[str, Any] = {"form": form}
        status = 200
        if form.is_valid():
            card = Card.objects.filter(card_number=form.cleaned_data["card_number"]).first()
            if card is None:
                form.add_error("card_number", _("No card has this number."))
                status = 404
            else:
                try:
                    context["report"] = card_report_loss(
                        card_id=card.pk,
                        reason=form.cleaned_data["reason"],
                        identity_check=form.cleaned_data["identity_check"],
                        caller=Caller.for_user(request.user),
                    )
                except ApplicationError as exc:
                    context["error"] = exc.message
                    status = exc.status_code
        else:
            status = 400
        return render(request, self.template_name, context, status=status)


class RenewalCampaignView(RoleRequiredMixin, TemplateView):
    """What the expiry sweep found: due, invited or requested, done, overdue; the invitations."""

    roles = (
        Role.ISSUANCE_OPERATOR,
        Role.HELPDESK_AGENT,
        Role.SECURITY_OFFICER,
        Role.AUDITOR,
    )
    template_name = "console/after_issuance/campaign.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {
            **super().get_context_data(**kwargs),
            "campaign": campaign(),
            "invitations": RenewalInvitation.objects.filter(status=RenewalInvitation.Status.INVITED)
            .select_related("card")
            .order_by("certificates_not_after", "pk")[:100],
        }


class BulkRevocationsView(RoleRequiredMixin, TemplateView):
    """Bulk revocations with their progress; launched through the API under dual control."""

    roles = (Role.SECURITY_OFFICER, Role.AUDITOR)
    template_name = "console/after_issuance/bulk_revocations.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {
            **super().get_context_data(**kwargs),
            "bulks": BulkRevocation.objects.order_by("-created_at", "-pk")[:100],
        }


class RenewalsOpenView(ConsolePage):
    """Certificate renewals on the card running or interrupted; an issuance operator or a
    helpdesk agent abandons one whose card will not come back (confirmation and reason)."""

    roles = (
        Role.ISSUANCE_OPERATOR,
        Role.HELPDESK_AGENT,
        Role.SECURITY_OFFICER,
        Role.AUDITOR,
    )
    template_name = "console/after_issuance/renewals.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {
            **super().get_context_data(**kwargs),
            "renewals": renewal_list_open()[:200],
            "may_abandon": bool(caller_of(self.request).roles & ABANDON_ROLES),
        }


class RenewalAbandonView(ConsolePage):
    roles = (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT)
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            renewal_abandon(
                renewal_id=self.kwargs["renewal_id"],
                caller=caller_of(request),
                reason=request.POST.get("reason", "")[:200],
            )
        except ApplicationError as exc:
            refused(request, exc)
        else:
            messages.success(
                request,
                _("Renewal abandoned: its pending certificates are revoked."),
            )
        return HttpResponseRedirect(reverse("console:renewals-open"))
