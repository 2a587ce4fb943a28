"""The roles of DESIGN.md §3, held as Django groups (created by a data migration). The names are
``core.role_names.Role`` (a plain enum the pure tables import); this is the Django side."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from core.role_names import Role

__all__ = ["Role", "roles_compatible_check", "roles_of", "roles_of_account"]


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


def roles_compatible_check(*, user: AbstractBaseUser, adding: frozenset[Role]) -> None:
    """Refuse (422) a grant that would give ``user`` incompatible roles (core.role_names)."""
    from core.errors import PolicyViolation
    from core.role_names import incompatibility

    held = frozenset(roles_of_account(user))
    why = incompatibility(held | adding)
    if why is not None:
        raise PolicyViolation(
            f"{user.get_username()} cannot hold {', '.join(sorted(r.value for r in adding))}: "
            f"{why}.",
            extra={"held": sorted(r.value for r in held)},
        )


def roles_of_account(user: AbstractBaseUser) -> set[Role]:
    """The roles granted to an account, active or not, read from the database (no cache)."""
    valid = {role.value for role in Role}
    names = user.groups.values_list("name", flat=True)  # type: ignore[attr-defined]
    return {Role(name) for name in names if name in valid}
