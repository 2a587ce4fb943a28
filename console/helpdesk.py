"""The helpdesk's console pages (issue 14): card search, the card page with its unblock history and
last known PIN/PUK counters, the offline-unblock wizard (identity check → challenge →
response, the rate-limit state in view), and the new-codes request (identity check → reason; a
station writes the codes, the holder gets them by mail). An agent never sees a PIN or PUK: only
the one-time response, on the page that computed it (never stored, ``Cache-Control:
no-store``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.generic import TemplateView

from cms import selectors
from cms.callers import Caller
from cms.services.helpdesk import (
    identity_methods,
    offline_unblock_respond,
    unblock_history,
    unblock_limits,
)
from cms.services.new_codes import REASONS, dual_control_on, new_codes_history, new_codes_request
from console.access import RoleRequiredMixin
from core.errors import ApplicationError, NotFound
from core.roles import Role, roles_of

HELPDESK_PAGES = (Role.HELPDESK_AGENT, Role.SECURITY_OFFICER, Role.AUDITOR)


class HelpdeskSearchView(RoleRequiredMixin, TemplateView):
    """Find a card by holder name, national id, card number or contactless UID."""

    roles = HELPDESK_PAGES
    template_name = "console/helpdesk/search.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        q = self.request.GET.get("q", "").strip()
        cards = []
        if q:
            match = (
                Q(card_number__icontains=q)
                | Q(chip_serial__icontains=q)
                | Q(desfire_uid__iexact=q)
                | Q(holder__national_id__icontains=q)
                | Q(holder__last_name__icontains=q)
                | Q(holder__first_name__icontains=q)
            )
            cards = list(selectors.card_list().filter(match).exclude(holder=None)[:50])
        return {**super().get_context_data(**kwargs), "q": q, "cards": cards}


class HelpdeskCardView(RoleRequiredMixin, TemplateView):
    """A card for the helpdesk: state, counters, history, and (for agents) the unblock wizard."""

    roles = HELPDESK_PAGES
    template_name = "console/helpdesk/card.html"

    def _card(self, card_id: UUID) -> Any:
        try:
            return selectors.card_get(card_id=card_id)
        except NotFound:
            raise Http404 from None

    def _context(self, card: Any, **extra: Any) -> dict[str, Any]:
        user = self.request.user
        return {
            "card": card,
            "limits": unblock_limits(card_id=card.pk, user_id=int(user.pk)),  # type: ignore[arg-type]
            "history": list(unblock_history(card_id=card.pk)[:50]),
            "new_codes": list(new_codes_history(card_id=card.pk)[:20]),
            "methods": identity_methods(),
            "agent": Role.HELPDESK_AGENT in roles_of(user),
            **extra,
        }

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        card = self._card(kwargs["card_id"])
        return render(request, self.template_name, self._context(card, form={}))

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if Role.HELPDESK_AGENT not in roles_of(request.user):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        card = self._card(kwargs["card_id"])
        form = {
            "identity_method": request.POST.get("identity_method", ""),
            "identity_reference": request.POST.get("identity_reference", ""),
            "challenge": request.POST.get("challenge", ""),
            "approval": request.POST.get("approval", ""),
        }
        approval = form["approval"]
        extra: dict[str, Any] = {"form": form}
        status = 200
        try:
            result = offline_unblock_respond(
                card_id=card.pk,
                challenge=form["challenge"],
                identity_method=form["identity_method"],
                identity_reference=form["identity_reference"],
                approval_id=int(approval) if approval.isdigit() else None,
                caller=Caller.for_user(request.user),
            )
            extra["result"] = result
        except ApplicationError as exc:
            extra["error"] = exc.message
            status = exc.status_code
        response = render(request, self.template_name, self._context(card, **extra), status=status)
        response["Cache-Control"] = "no-store"
        return response


class HelpdeskNewCodesView(RoleRequiredMixin, TemplateView):
    """File a new-codes request for a card: the identity check, the reason; the card's requests
    so far. The codes are never shown: the holder gets them in a new PIN mailer once a station
    has written them."""

    roles = (Role.HELPDESK_AGENT,)
    template_name = "console/helpdesk/new_codes.html"

    def _context(self, card_id: UUID, **extra: Any) -> dict[str, Any]:
        try:
            card = selectors.card_get(card_id=card_id)
        except NotFound:
            raise Http404 from None
        return {
            "card": card,
            "methods": identity_methods(),
            "reasons": REASONS,
            "dual_control": dual_control_on(),
            "requests": list(new_codes_history(card_id=card.pk)[:20]),
            "form": {},
            **extra,
        }

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return render(request, self.template_name, self._context(kwargs["card_id"]))

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = {
            name: request.POST.get(name, "")
            for name in ("reason", "identity_method", "identity_reference", "note")
        }
        extra: dict[str, Any] = {"form": form}
        status = 200
        try:
            extra["filed"] = new_codes_request(
                card_id=kwargs["card_id"],
                reason=form["reason"],
                identity_method=form["identity_method"],
                identity_reference=form["identity_reference"],
                note=form["note"],
                caller=Caller.for_user(request.user),
            )
            extra["form"] = {}
        except ApplicationError as exc:
            extra["error"] = exc.message
            status = exc.status_code
        return render(
            request, self.template_name, self._context(kwargs["card_id"], **extra), status=status
        )
