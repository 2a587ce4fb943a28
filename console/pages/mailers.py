"""The PIN mailer print queue: the letters not posted yet, print one (the PDF opens in a new tab,
where the browser's print dialog prints it), reprint it before confirmation, and confirm it was
enveloped (its sealed codes are then deleted). Every print and confirmation is audited by the
mailer services; this page never reads a code."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from cms.mailers.choices import MailerStatus
from cms.mailers.selectors import pin_mailer_list
from cms.mailers.services import pin_mailer_confirm, pin_mailer_print
from console.pages.base import ConsolePage, caller_of, page_of, refused
from core.errors import ApplicationError
from core.roles import Role

PRINTERS = (Role.ISSUANCE_OPERATOR,)


class MailerQueueView(ConsolePage):
    roles = PRINTERS
    template_name = "console/mailers.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {
            **super().get_context_data(**kwargs),
            "page_obj": page_of(
                self.request, pin_mailer_list().select_related("card", "card__holder")
            ),
            "queued": MailerStatus.QUEUED,
        }


class MailerPrintView(ConsolePage):
    """POST: the letter as a PDF, shown inline (the form targets a new tab); audited."""

    roles = PRINTERS
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        mailer_id: UUID = self.kwargs["mailer_id"]
        try:
            pdf = pin_mailer_print(mailer_id=mailer_id, caller=caller_of(request))
        except ApplicationError as exc:
            refused(request, exc)
            return HttpResponseRedirect(reverse("console:mailers"))
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="pin-mailer-{mailer_id}.pdf"'
        response["Cache-Control"] = "no-store"  # the letter carries the codes
        return response


class MailerConfirmView(ConsolePage):
    roles = PRINTERS
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            mailer = pin_mailer_confirm(
                mailer_id=self.kwargs["mailer_id"], caller=caller_of(request)
            )
        except ApplicationError as exc:
            refused(request, exc)
        else:
            messages.success(
                request,
                _("%(reference)s confirmed: its codes are deleted.")
                % {"reference": mailer.reference},
            )
        return HttpResponseRedirect(reverse("console:mailers"))
