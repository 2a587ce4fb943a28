"""The roles of DESIGN.md §3, held as Django groups (created by a data migration)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models


class Role(models.TextChoices):
    ISSUANCE_OPERATOR = "issuance_operator", "Issuance operator"
    HELPDESK_AGENT = "helpdesk_agent", "Helpdesk agent"
    SECURITY_OFFICER = "security_officer", "Security officer"
    AUDITOR = "auditor", "Auditor"
    STATION = "station", "Station (machine account)"


def roles_of(user: AbstractBaseUser | AnonymousUser | None) -> frozenset[Role]:
    """The roles a user holds; none for anonymous or inactive users.

    Superusers hold no role by that fact alone: every privilege is granted through a group, so the
    audit trail always shows which role acted.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    cached: frozenset[Role] | None = getattr(user, "_core_roles", None)
    if cached is None:
        valid = set(Role.values)
        names = user.groups.values_list("name", flat=True)  # type: ignore[attr-defined]
        cached = frozenset(Role(name) for name in names if name in valid)
        setattr(user, "_core_roles", cached)  # noqa: B010 - a per-request cache on the user
    return cached
