"""The console's navigation: each section with the roles that see it."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from core.roles import Role


@dataclass(frozen=True)
class Section:
    url_name: str
    title: str | Promise
    roles: tuple[Role, ...]


SECTIONS = (
    Section("console:audit", _("Audit log"), (Role.AUDITOR, Role.SECURITY_OFFICER)),
    Section(
        "console:helpdesk",
        _("Helpdesk"),
        (Role.HELPDESK_AGENT, Role.SECURITY_OFFICER, Role.AUDITOR),
    ),
)


def sections_for(roles: frozenset[Role]) -> list[Section]:
    return [section for section in SECTIONS if roles & set(section.roles)]
