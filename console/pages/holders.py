"""Holders: search, holder page, create and edit (the registry services' validation, as the API)."""

from __future__ import annotations

import csv
import re
from dataclasses import fields
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django import forms
from django.contrib import messages
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from cms.choices import CardType, HolderStatus, ProductStatus, Profession, RequestKind
from cms.models import Holder
from cms.selectors import card_list, holder_get, holder_list, product_list, request_list
from cms.services.holders import HolderData, holder_create, holder_update
from cms.services.requests import request_create, request_submit
from cms.tasks import holder_import_start, holder_import_state
from console.pages.base import ConsolePage, caller_of, page_of, refused
from console.sections import OPERATORS
from core.audit import audit_event_list
from core.errors import ApplicationError, BadInput, NotFound
from core.roles import Role

HEX_UID = re.compile(r"^[0-9A-Fa-f]{14}$")


def holder_search(query: str) -> QuerySet[Holder]:
    """One search box: a national identifier, a card number, a DESFire UID (14 hex digits) or a
    name (substring on the trigram-indexed last name from 3 characters, prefix below)."""
    query = query.strip()
    holders = holder_list()
    if not query:
        return holders
    if HEX_UID.match(query) and not query.isdigit():
        return holders.filter(cards__desfire_uid=query.upper()).distinct()
    if any(ch.isdigit() for ch in query):
        compact = query.replace(" ", "")
        return holders.filter(
            Q(national_id=compact)
            | Q(national_id__endswith=compact)
            | Q(cards__card_number=compact)
            | Q(cards__desfire_uid=compact.upper())
        ).distinct()
    lookup = "icontains" if len(query) >= 3 else "istartswith"
    return holders.filter(**{f"last_name__{lookup}": query})


class HolderListView(ConsolePage):
    roles = OPERATORS
    template_name = "console/holders/list.html"

    def get_template_names(self) -> list[str]:
        if self.request.headers.get("HX-Request"):
            return ["console/holders/_table.html"]
        return [self.template_name]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        query = self.request.GET.get("q", "")
        return {
            **super().get_context_data(**kwargs),
            "q": query,
            "page_obj": page_of(self.request, holder_search(query)),
            "may_write": Role.ISSUANCE_OPERATOR in caller_of(self.request).roles,
        }


class HolderForm(forms.Form):
    national_id = forms.CharField(
        label=_("National identifier"),
        max_length=40,
        help_text=_("idNat_PS: the RPPS number prefixed with 8, or ADELI prefixed with 0"),
    )
    last_name = forms.CharField(label=_("Last name"), max_length=100)
    first_name = forms.CharField(label=_("First name"), max_length=100)
    profession = forms.ChoiceField(label=_("Profession"), choices=Profession.choices)
    card_type = forms.ChoiceField(label=_("Card type"), choices=CardType.choices)
    status = forms.ChoiceField(label=_("Status"), choices=HolderStatus.choices)
    address_line1 = forms.CharField(label=_("Address"), max_length=200, required=False)
    address_line2 = forms.CharField(label=_("Address (line 2)"), max_length=200, required=False)
    postal_code = forms.CharField(label=_("Postal code"), max_length=10, required=False)
    city = forms.CharField(label=_("City"), max_length=100, required=False)
    country = forms.CharField(label=_("Country"), max_length=2, initial="FR")

    def apply_service_errors(self, error: BadInput) -> None:
        """The service's field errors (``extra.fields``) onto the form's fields."""
        for name, text in (error.extra.get("fields") or {}).items():
            self.add_error(name if name in self.fields else None, str(text))
        if not error.extra.get("fields"):
            self.add_error(None, error.message)


class HolderCreateView(ConsolePage):
    roles = (Role.ISSUANCE_OPERATOR,)
    template_name = "console/holders/form.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.render_form(HolderForm(initial={"card_type": "CPS", "status": "active"}))

    def render_form(self, form: HolderForm, holder: Holder | None = None) -> HttpResponse:
        status = 400 if form.is_bound else 200
        return render(
            self.request, self.template_name, {"form": form, "holder": holder}, status=status
        )

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = HolderForm(request.POST)
        if not form.is_valid():
            return self.render_form(form)
        data = HolderData(**{f.name: form.cleaned_data.get(f.name, "") for f in fields(HolderData)})
        try:
            holder = holder_create(data=data, caller=caller_of(request))
        except BadInput as exc:
            form.apply_service_errors(exc)
            return self.render_form(form)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            return self.render_form(form)
        messages.success(request, _("Holder registered."))
        return HttpResponseRedirect(reverse("console:holder", args=[holder.pk]))


class HolderEditView(HolderCreateView):
    def holder(self) -> Holder:
        return holder_get(holder_id=self.kwargs["holder_id"])

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        holder = self.holder()
        initial = {f.name: getattr(holder, f.name) for f in fields(HolderData)}
        form = HolderForm(initial=initial)
        form.fields["national_id"].disabled = True
        return self.render_form(form, holder)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        holder = self.holder()
        form = HolderForm(request.POST, initial={"national_id": holder.national_id})
        form.fields["national_id"].disabled = True
        if not form.is_valid():
            return self.render_form(form, holder)
        changes = {
            name: str(form.cleaned_data.get(name) or "")
            for name in (f.name for f in fields(HolderData))
            if name != "national_id"
            and str(form.cleaned_data.get(name) or "") != str(getattr(holder, name))
        }
        try:
            holder_update(holder_id=holder.pk, changes=changes, caller=caller_of(request))
        except BadInput as exc:
            form.apply_service_errors(exc)
            return self.render_form(form, holder)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            return self.render_form(form, holder)
        messages.success(request, _("Holder updated."))
        return HttpResponseRedirect(reverse("console:holder", args=[holder.pk]))


class HolderView(ConsolePage):
    roles = OPERATORS
    template_name = "console/holders/detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        holder_id: UUID = self.kwargs["holder_id"]
        holder = holder_get(holder_id=holder_id)
        roles = caller_of(self.request).roles
        return {
            **super().get_context_data(**kwargs),
            "holder": holder,
            "cards": card_list().filter(holder=holder),
            "requests": request_list().filter(holder=holder),
            "events": audit_event_list().filter(object_type="holder", object_id=str(holder.pk))[
                :20
            ],
            "audit_link": urlencode({"object_type": "holder", "object_id": str(holder.pk)}),
            "products": product_list().filter(status=ProductStatus.ISSUED),
            "may_write": Role.ISSUANCE_OPERATOR in roles,
            "may_request": bool(roles & {Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT}),
        }


class RequestFileView(ConsolePage):
    """File a card request for a holder (created and submitted: it then waits for a second
    approver when its kind or product asks for one)."""

    roles = (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT)
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        holder_id: UUID = self.kwargs["holder_id"]
        back = reverse("console:holder", args=[holder_id])
        product = request.POST.get("product", "")
        kind = request.POST.get("kind", RequestKind.NEW)
        if not product.isdigit():
            messages.error(request, _("Choose a card product."))
            return HttpResponseRedirect(back)
        caller = caller_of(request)
        try:
            with transaction.atomic():
                card_request = request_create(
                    holder_id=holder_id,
                    kind=kind,
                    product_id=int(product),
                    caller=caller,
                    note=request.POST.get("note", ""),
                )
                request_submit(request_id=card_request.pk, caller=caller)
        except ApplicationError as exc:
            refused(request, exc)
            return HttpResponseRedirect(back)
        messages.success(request, _("Request filed."))
        return HttpResponseRedirect(reverse("console:request", args=[card_request.pk]))


class HolderImportView(ConsolePage):
    """Upload an extract (CSV): queued for a Celery worker; the page then polls its progress."""

    roles = (Role.ISSUANCE_OPERATOR,)
    template_name = "console/holders/import.html"
    max_bytes = 50 * 1024 * 1024

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        upload = request.FILES.get("file")
        if upload is None or not upload.size:
            messages.error(request, _("Choose a CSV file."))
            return HttpResponseRedirect(reverse("console:holder_import"))
        if upload.size is not None and upload.size > self.max_bytes:
            messages.error(request, _("The file is larger than 50 MB; split it."))
            return HttpResponseRedirect(reverse("console:holder_import"))
        try:
            with transaction.atomic():
                import_id = holder_import_start(content=upload.read(), caller=caller_of(request))
        except ApplicationError as exc:
            refused(request, exc)
            return HttpResponseRedirect(reverse("console:holder_import"))
        return HttpResponseRedirect(reverse("console:holder_import_status", args=[import_id]))


def _own_import(request: HttpRequest, import_id: str) -> dict[str, Any]:
    state = holder_import_state(import_id)
    if state is None or state.get("user_id") != request.user.pk:
        raise NotFound(f"No import {import_id} of yours (imports are kept one day).")
    return state


class HolderImportStatusView(ConsolePage):
    """The import's progress; htmx polls the fragment every second until it is done."""

    roles = (Role.ISSUANCE_OPERATOR,)
    template_name = "console/holders/import_status.html"

    def get_template_names(self) -> list[str]:
        if self.request.headers.get("HX-Request"):
            return ["console/holders/_import_progress.html"]
        return [self.template_name]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        import_id = self.kwargs["import_id"]
        state = _own_import(self.request, import_id)
        estimate = max(int(state.get("estimate") or 0), int(state.get("rows") or 0), 1)
        return {
            **super().get_context_data(**kwargs),
            "import_id": import_id,
            "job": state,
            "percent": 100 if state["state"] == "done" else int(100 * state["rows"] / estimate),
            "finished": state["state"] in ("done", "failed"),
        }


class HolderImportRejectedView(ConsolePage):
    """The rejected rows as CSV: line, national identifier, field, reason."""

    roles = (Role.ISSUANCE_OPERATOR,)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        import_id = self.kwargs["import_id"]
        state = _own_import(request, import_id)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="rejected-{import_id}.csv"'
        writer = csv.writer(response)
        writer.writerow(["line", "national_id", "field", "reason"])
        for row in (state.get("report") or {}).get("rejected", []):
            for name, reason in row["errors"].items():
                writer.writerow([row["line"], row["national_id"], name, reason])
        return response
