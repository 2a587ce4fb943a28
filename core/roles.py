"""The roles of DESIGN.md §3, held as Django groups (created by a data migration). The names are
``core.role_names.Role`` (a plain enum the pure tables import); this is the Django side."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from core.role_names import Role

__all__ = ["Role", "roles_of"]


def roles_of(user: AbstractBaseUser | AnonymousUser | None) -> frozenset[Role]:
    """The roles a user holds; none for anonymous or inactive users.

    Superusers hold no role by that fact alone: every privilege is granted through a group, so the
    audit trail always shows which role acted.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    cached: frozenset[Role] | None = getattr(user, "_core_roles", None)
    if cached is None:
        valid = {role.value for role in Role}
        names = user.groups.values_list("name", flat=True)  # type: ignore[attr-defined]
        cached = frozenset(Role(name) for name in names if name in valid)
        setattr(user, "_core_roles", cached)  # noqa: B010 - a per-request cache on the user
    return cached
