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
