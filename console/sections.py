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
    # after issuance (issue 15)
    Section(
        "console:card-report-loss",
        _("Report a lost card"),
        (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT),
    ),
    Section(
        "console:renewal-campaign",
        _("Renewal campaign"),
        (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT, Role.SECURITY_OFFICER, Role.AUDITOR),
    ),
    Section(
        "console:bulk-revocations", _("Bulk revocations"), (Role.SECURITY_OFFICER, Role.AUDITOR)
    ),
    Section(
        "console:migration",
        _("Migration"),
        (Role.ISSUANCE_OPERATOR, Role.SECURITY_OFFICER, Role.AUDITOR),
    ),
)


def sections_for(roles: frozenset[Role]) -> list[Section]:
    return [section for section in SECTIONS if roles & set(section.roles)]
