"""Every API view declares its roles in one place: ``roles = (Role.AUDITOR, ...)``.

``HasDeclaredRole`` is the default permission class: a view that forgets to declare ``roles``
fails closed (nobody may call it) and the endpoint × role test matrix flags it.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from core.roles import Role, roles_of

# Marker for endpoints any authenticated account may call (e.g. "who am I").
ANY_ROLE: tuple[Role, ...] = tuple(Role)


class HasDeclaredRole(BasePermission):
    message = "Your account does not hold a role allowed to call this endpoint."

    def has_permission(self, request: Request, view: Any) -> bool:
        declared: tuple[Role, ...] | None = getattr(view, "roles", None)
        if not declared:
            return False
        return bool(roles_of(request.user) & set(declared))
