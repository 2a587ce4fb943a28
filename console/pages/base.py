"""What every console page shares: role checks (``RoleRequiredMixin``), the ``Caller`` of the
signed-in user, and the way a refused service call becomes a flash message (no traceback, nothing
lost: the form is shown again with what was typed)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import render
from django.views.generic import TemplateView

from cms.callers import Caller
from console.access import RoleRequiredMixin
from core.errors import ApplicationError, NotFound


def caller_of(request: HttpRequest) -> Caller:
    return Caller.for_user(request.user)


def refused(request: HttpRequest, error: ApplicationError) -> None:
    """A service's refusal (400/403/404/409/422/503) as an error message on the next page."""
    messages.error(request, error.message)


def page_of(request: HttpRequest, queryset: QuerySet[Any], per_page: int = 25) -> Page[Any]:
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


class ConsolePage(RoleRequiredMixin, TemplateView):
    """A page of the console: declare ``roles`` and ``template_name``. An object that does not
    exist is a 404 page saying so."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return super().dispatch(request, *args, **kwargs)
        except NotFound as exc:
            return render(request, "console/not_found.html", {"message": exc.message}, status=404)
