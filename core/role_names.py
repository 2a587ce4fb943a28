"""The roles of DESIGN.md §3 as a plain enum: importable without Django configured, so the pure
declared tables (``cms.lifecycle``) can name them. ``core.roles`` holds the Django side (groups,
``roles_of``)."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """A role, stored as the name of the Django group that grants it."""

    ISSUANCE_OPERATOR = "issuance_operator"
    HELPDESK_AGENT = "helpdesk_agent"
    SECURITY_OFFICER = "security_officer"
    AUDITOR = "auditor"
    STATION = "station"

    @property
    def label(self) -> str:
        """The name shown to people."""
        return _LABELS[self]


_LABELS: dict[Role, str] = {
    Role.ISSUANCE_OPERATOR: "Issuance operator",
    Role.HELPDESK_AGENT: "Helpdesk agent",
    Role.SECURITY_OFFICER: "Security officer",
    Role.AUDITOR: "Auditor",
    Role.STATION: "Station (machine account)",
}


# Roles that act (change cards, requests, stock, keys): an auditor holds none of them, so no one
# audits their own acts; a station machine account holds no person's role (issue 11 §4).
ACTING_ROLES = frozenset({Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT, Role.SECURITY_OFFICER})
PERSON_ROLES = ACTING_ROLES | {Role.AUDITOR}


def incompatibility(roles: frozenset[Role] | set[Role]) -> str | None:
    """Why these roles cannot be held together by one account, or None when they can."""
    if Role.STATION in roles and roles & PERSON_ROLES:
        return "a station account holds no person's role"
    if Role.AUDITOR in roles and roles & ACTING_ROLES:
        acting = ", ".join(sorted(r.value for r in roles & ACTING_ROLES))
        return f"an auditor holds no role that acts (here: {acting})"
    return None
