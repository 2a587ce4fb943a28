"""Accounts and roles (security officers): create an account (its generated password shown once),
grant and withdraw roles, reset a password (the new one shown once); every change audited by
``core.users``. API tokens are listed and revoked elsewhere."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from console.pages.base import ConsolePage, caller_of, page_of, refused
from core.errors import ApplicationError, NotFound
from core.roles import Role, roles_of
from core.users import (
    HUMAN_ROLES,
    user_create_checked,
    user_grant_role,
    user_password_reset,
    user_withdraw_role,
)

MANAGERS = (Role.SECURITY_OFFICER,)


def _user(user_id: int) -> User:
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise NotFound(f"No account #{user_id}.")
    return user


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


class AccountListView(ConsolePage):
    roles = MANAGERS
    template_name = "console/accounts/list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        accounts = User.objects.prefetch_related("groups").order_by("username")
        page = page_of(self.request, accounts)
        return {
            **super().get_context_data(**kwargs),
            "page_obj": page,
            "rows": [(u, sorted(r.label for r in roles_of(u))) for u in page],
            "human_roles": [(r.value, r.label) for r in HUMAN_ROLES],
        }


class AccountCreateView(ConsolePage):
    roles = MANAGERS
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        actor = caller_of(request).actor
        wanted = [
            Role(v) for v in request.POST.getlist("roles") if v in {r.value for r in HUMAN_ROLES}
        ]
        try:
            with transaction.atomic():  # the account and its roles, or nothing
                user, password = user_create_checked(
                    username=request.POST.get("username", ""), actor=actor
                )
                for role in wanted:
                    user_grant_role(user=user, role=role, actor=actor)
        except ApplicationError as exc:
            refused(request, exc)
            return HttpResponseRedirect(reverse("console:accounts"))
        context = {"account": user, "password": password, "created": True}
        return _no_store(render(request, "console/accounts/password.html", context))


class AccountView(ConsolePage):
    roles = MANAGERS
    template_name = "console/accounts/detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        user = _user(self.kwargs["user_id"])
        held = roles_of(user)
        return {
            **super().get_context_data(**kwargs),
            "account": user,
            "roles": [{"value": r.value, "label": r.label, "held": r in held} for r in HUMAN_ROLES],
        }


class AccountRoleView(ConsolePage):
    """POST role + decision (grant | withdraw)."""

    roles = MANAGERS
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = _user(self.kwargs["user_id"])
        actor = caller_of(request).actor
        value, decision = request.POST.get("role", ""), request.POST.get("decision", "")
        if value not in {r.value for r in HUMAN_ROLES} or decision not in ("grant", "withdraw"):
            messages.error(request, _("Choose a role and grant or withdraw."))
        else:
            try:
                if decision == "grant":
                    user_grant_role(user=user, role=Role(value), actor=actor)
                else:
                    user_withdraw_role(user=user, role=Role(value), actor=actor)
                messages.success(request, _("Roles updated."))
            except ApplicationError as exc:
                refused(request, exc)
        return HttpResponseRedirect(reverse("console:account", args=[user.pk]))


class AccountPasswordView(ConsolePage):
    roles = MANAGERS
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = _user(self.kwargs["user_id"])
        password = user_password_reset(user=user, actor=caller_of(request).actor)
        context = {"account": user, "password": password, "created": False}
        return _no_store(render(request, "console/accounts/password.html", context))
