"""Cards: list, card page (state, certificates, contactless, mailer, the allowed actions and the
lifecycle diagram) and the transitions, each confirmed, with a reason where the table needs one."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from cms import lifecycle
from cms.choices import ApprovalStatus, CardStatus, RevokeReason
from cms.models import Card, CardCertificate, DenyListEntry, PinMailer
from cms.selectors import card_approval_list, card_get, card_list
from cms.services.cards import (
    allowed_names,
    card_transition,
    card_transition_approve,
    card_transition_reject,
)
from console.labels import CARD_ACTIONS
from console.lifecycle_svg import lifecycle_svg
from console.pages.base import ConsolePage, caller_of, page_of, refused
from console.sections import OPERATORS
from core.audit import audit_event_list
from core.errors import ApplicationError
from core.roles import Role

# Who changes cards (auditors read only).
ACTORS = (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT, Role.SECURITY_OFFICER)

# Transitions a station session or a scheduled task drives: no button for them on the card page.
STATION_DRIVEN = frozenset(
    t.name
    for t in lifecycle.TRANSITIONS
    if t.system
    and t.sources <= {CardStatus.IN_STOCK, CardStatus.ALLOCATED, CardStatus.PERSONALIZING}
)


def card_search(query: str, status: str) -> QuerySet[Card]:
    cards = card_list()
    if status in CardStatus.values:
        cards = cards.filter(status=status)
    query = query.strip().replace(" ", "")
    if query:
        cards = cards.filter(
            Q(card_number=query)
            | Q(desfire_uid=query.upper())
            | Q(chip_serial=query.upper())
            | Q(holder__national_id=query)
        )
    return cards


class CardListView(ConsolePage):
    roles = OPERATORS
    template_name = "console/cards/list.html"

    def get_template_names(self) -> list[str]:
        if self.request.headers.get("HX-Request"):
            return ["console/cards/_table.html"]
        return [self.template_name]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        query, status = self.request.GET.get("q", ""), self.request.GET.get("status", "")
        return {
            **super().get_context_data(**kwargs),
            "q": query,
            "status": status,
            "statuses": CardStatus.choices,
            "page_obj": page_of(self.request, card_search(query, status)),
        }


def card_actions(card: Card, request: HttpRequest) -> list[dict[str, Any]]:
    caller = caller_of(request)
    actions = []
    for name in allowed_names(CardStatus(card.status), caller):
        if name in STATION_DRIVEN:
            continue
        t = lifecycle.BY_NAME[name]
        label, prompt = CARD_ACTIONS.get(name, (name.capitalize(), t.summary))
        actions.append(
            {
                "action_id": name,
                "label": label,
                "url": reverse("console:card_transition", args=[card.pk, name]),
                "prompt": str(prompt)
                + (" " + str(_("A second person must approve it.")) if t.dual_control else ""),
                "reasons": RevokeReason.choices if t.needs_reason else None,
                "danger": name in ("revoke", "destroy", "suspend"),
            }
        )
    return actions


class CardView(ConsolePage):
    roles = OPERATORS
    template_name = "console/cards/detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        card = card_get(card_id=self.kwargs["card_id"])
        links = CardCertificate.objects.filter(card=card).select_related(
            "certificate", "certificate__issuer"
        )
        return {
            **super().get_context_data(**kwargs),
            "card": card,
            "certificates": [(link.slot, link.certificate) for link in links],
            "denied": DenyListEntry.objects.filter(card=card).first(),
            "mailers": PinMailer.objects.filter(card=card)
            .defer("sealed_secrets")
            .order_by("-created_at"),
            "actions": card_actions(card, self.request),
            "pending": card_approval_list().filter(card=card, status=ApprovalStatus.PENDING),
            "diagram": mark_safe(lifecycle_svg(card.status)),  # noqa: S308 - built from enums
            "events": audit_event_list().filter(object_type="card", object_id=str(card.pk))[:20],
            "audit_link": urlencode({"object_type": "card", "object_id": str(card.pk)}),
        }


class CardTransitionView(ConsolePage):
    """POST: apply (or, under dual control, ask) one transition of the lifecycle table."""

    roles = ACTORS
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        card_id: UUID = self.kwargs["card_id"]
        name: str = self.kwargs["transition"]
        try:
            outcome = card_transition(
                card_id=card_id,
                transition=name,
                caller=caller_of(request),
                reason=request.POST.get("reason") or None,
            )
        except ApplicationError as exc:
            refused(request, exc)
        else:
            if outcome.applied:
                messages.success(request, _("Done: %(name)s.") % {"name": name})
            elif outcome.approval is not None:
                messages.info(
                    request, _("Recorded: %(name)s waits for a second approver.") % {"name": name}
                )
            else:
                messages.info(request, _("Nothing to do: the card is there already."))
        return HttpResponseRedirect(reverse("console:card", args=[card_id]))


class CardApprovalView(ConsolePage):
    """POST: a second person approves or rejects a pending dual-control transition."""

    roles = ACTORS
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        approval_id: int = self.kwargs["approval_id"]
        decision = request.POST.get("decision")
        pending = card_approval_list().filter(pk=approval_id).first()
        back = (
            reverse("console:card", args=[pending.card_id])
            if pending is not None
            else reverse("console:requests")
        )
        caller = caller_of(request)
        try:
            if decision == "approve":
                card_transition_approve(approval_id=approval_id, caller=caller)
                messages.success(request, _("Approved and applied."))
            elif decision == "reject":
                card_transition_reject(approval_id=approval_id, caller=caller)
                messages.success(request, _("Rejected."))
            else:
                messages.error(request, _("Choose approve or reject."))
        except ApplicationError as exc:
            refused(request, exc)
        return HttpResponseRedirect(back)
