"""Card requests: the queue by state, the approval queue (who filed; one's own request cannot be
approved, and the page says so), a request's page with its decisions (dual control: the second
person approves in their own session), and queueing an approved request for personalization."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from cms import lifecycle
from cms.choices import ApprovalStatus, RequestStatus
from cms.selectors import card_approval_list, request_get, request_list
from cms.services.requests import request_approve, request_queue, request_reject
from console.pages.base import ConsolePage, caller_of, page_of, refused
from console.sections import OPERATORS
from core.audit import audit_event_list
from core.errors import ApplicationError
from core.roles import Role

DECIDERS = tuple(sorted(lifecycle.REQUEST_BY_NAME["approve"].roles))


class RequestListView(ConsolePage):
    roles = OPERATORS
    template_name = "console/requests/list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        status = self.request.GET.get("status", RequestStatus.SUBMITTED)
        requests = request_list()
        if status in RequestStatus.values:
            requests = requests.filter(status=status)
        return {
            **super().get_context_data(**kwargs),
            "status": status,
            "tabs": [
                {
                    "value": value,
                    "label": label,
                    "count": request_list().filter(status=value).count(),
                }
                for value, label in RequestStatus.choices
            ],
            "page_obj": page_of(self.request, requests),
            "card_approvals": card_approval_list().filter(status=ApprovalStatus.PENDING),
        }


class RequestView(ConsolePage):
    roles = OPERATORS
    template_name = "console/requests/detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        card_request = request_get(request_id=self.kwargs["request_id"])
        caller = caller_of(self.request)
        own = card_request.requested_by_id == caller.user_id
        may_decide = bool(caller.roles & set(DECIDERS))
        return {
            **super().get_context_data(**kwargs),
            "r": card_request,
            "own": own,
            "may_approve": may_decide
            and not own
            and card_request.status == RequestStatus.SUBMITTED,
            "may_reject": card_request.status in (RequestStatus.DRAFT, RequestStatus.SUBMITTED)
            and (own or may_decide),
            "may_queue": Role.ISSUANCE_OPERATOR in caller.roles
            and card_request.status in (RequestStatus.APPROVED, RequestStatus.FAILED),
            "events": audit_event_list().filter(
                object_type="card_request", object_id=str(card_request.pk)
            )[:20],
            "audit_link": urlencode(
                {"object_type": "card_request", "object_id": str(card_request.pk)}
            ),
        }


class RequestDecisionView(ConsolePage):
    """POST ``decision`` = approve | reject | queue. The services refuse what the user may not do
    (approving one's own request: 403, shown as a message); nothing is lost."""

    roles = (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT, Role.SECURITY_OFFICER)
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        request_id: UUID = self.kwargs["request_id"]
        decision = request.POST.get("decision", "")
        note = request.POST.get("note", "")
        caller = caller_of(request)
        try:
            if decision == "approve":
                request_approve(request_id=request_id, caller=caller, note=note)
                messages.success(request, _("Request approved."))
            elif decision == "reject":
                request_reject(request_id=request_id, caller=caller, note=note)
                messages.success(request, _("Request rejected."))
            elif decision == "queue":
                request_queue(request_id=request_id, caller=caller)
                messages.success(
                    request, _("A blank card is set aside; the request waits for a station.")
                )
            else:
                messages.error(request, _("Unknown decision."))
        except ApplicationError as exc:
            refused(request, exc)
        return HttpResponseRedirect(reverse("console:request", args=[request_id]))
