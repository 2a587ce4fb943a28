"""The console's navigation registry: each section names its URL, its label and the roles that see
it. A feature adds its page to the header by adding one ``Section`` here (and the view declares the
same roles: ``tests/console/test_pages.py`` checks they agree)."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from core.roles import Role

OPERATORS = (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT, Role.SECURITY_OFFICER, Role.AUDITOR)


@dataclass(frozen=True)
class Section:
    url_name: str
    title: str | Promise
    roles: tuple[Role, ...]


SECTIONS: tuple[Section, ...] = (
    Section("console:holders", _("Holders"), OPERATORS),
    Section("console:cards", _("Cards"), OPERATORS),
    Section("console:requests", _("Requests"), OPERATORS),
    Section(
        "console:stock", _("Stock"), (Role.ISSUANCE_OPERATOR, Role.SECURITY_OFFICER, Role.AUDITOR)
    ),
    Section("console:mailers", _("PIN mailers"), (Role.ISSUANCE_OPERATOR,)),
    Section(
        "console:stations",
        _("Stations"),
        (Role.SECURITY_OFFICER, Role.ISSUANCE_OPERATOR, Role.AUDITOR),
    ),
    Section("console:pki", _("PKI"), (Role.SECURITY_OFFICER, Role.AUDITOR)),
    Section("console:accounts", _("Accounts"), (Role.SECURITY_OFFICER,)),
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
        "console:renewals-open",
        _("Renewals on the card"),
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
    Section("console:contactless", _("Contactless"), (Role.SECURITY_OFFICER, Role.AUDITOR)),
    Section(
        "console:helpdesk",
        _("Helpdesk"),
        (Role.HELPDESK_AGENT, Role.SECURITY_OFFICER, Role.AUDITOR),
    ),
    Section("console:audit", _("Audit log"), (Role.AUDITOR, Role.SECURITY_OFFICER)),
)


def sections_for(roles: frozenset[Role]) -> list[Section]:
    return [section for section in SECTIONS if roles & set(section.roles)]
