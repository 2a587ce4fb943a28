"""Every console page declares its roles, as every API view does."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase

from core.roles import Role, roles_of


class RoleRequiredMixin(LoginRequiredMixin):
    """Anonymous users go to the login page; a signed-in user without a declared role gets 403."""

    roles: tuple[Role, ...] = ()

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.user.is_authenticated and not (roles_of(request.user) & set(self.roles)):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)
