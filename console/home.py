"""The home page's "what waits for me": for each role, counts that link to the list of the work."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from cms.choices import ApprovalStatus, CardStatus, RequestStatus
from cms.mailers.selectors import pin_mailer_list
from cms.selectors import card_approval_list, card_list, request_list
from cms.services.stock import pools_low_on_stock
from core.audit import audit_event_count
from core.roles import Role
from pki.selectors import authority_list


@dataclass(frozen=True)
class Tile:
    title: str | Promise
    count: int
    url: str
    alert: bool = False


def _late_crls() -> int:
    """CAs whose latest CRL's next update has passed, or that never published one."""
    now = timezone.now()
    late = 0
    for authority in authority_list():
        latest = authority.crls.order_by("-number").first()
        if latest is None or latest.next_update < now:
            late += 1
    return late


def waiting_for(roles: frozenset[Role], user_id: int | None) -> list[Tile]:
    tiles: list[Tile] = []
    requests = reverse("console:requests")
    cards = reverse("console:cards")
    if roles & {Role.ISSUANCE_OPERATOR, Role.SECURITY_OFFICER}:
        waiting = request_list().filter(status=RequestStatus.SUBMITTED)
        if user_id is not None:
            waiting = waiting.exclude(requested_by_id=user_id)
        tiles.append(
            Tile(
                _("Requests waiting for your approval"),
                waiting.count(),
                f"{requests}?status=submitted",
            )
        )
    if Role.ISSUANCE_OPERATOR in roles:
        tiles.append(
            Tile(
                _("Approved requests to queue"),
                request_list().filter(status=RequestStatus.APPROVED).count(),
                f"{requests}?status=approved",
            )
        )
        tiles.append(
            Tile(
                _("Cards issued, waiting for activation"),
                card_list().filter(status=CardStatus.ISSUED).count(),
                f"{cards}?status=ISSUED",
            )
        )
        tiles.append(
            Tile(_("PIN mailers to print"), pin_mailer_list().count(), reverse("console:mailers"))
        )
    if roles & {Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT, Role.SECURITY_OFFICER}:
        tiles.append(
            Tile(
                _("Card actions waiting for a second person"),
                card_approval_list().filter(status=ApprovalStatus.PENDING).count(),
                requests,
            )
        )
    if roles & {Role.ISSUANCE_OPERATOR, Role.SECURITY_OFFICER}:
        low = len(pools_low_on_stock())
        tiles.append(Tile(_("Pools low on stock"), low, reverse("console:stock"), alert=low > 0))
    if Role.HELPDESK_AGENT in roles:
        tiles.append(
            Tile(
                _("Suspended cards"),
                card_list().filter(status=CardStatus.SUSPENDED).count(),
                f"{cards}?status=SUSPENDED",
            )
        )
    if Role.SECURITY_OFFICER in roles:
        late = _late_crls()
        tiles.append(Tile(_("CAs with a late CRL"), late, reverse("console:pki"), alert=late > 0))
    if roles & {Role.AUDITOR, Role.SECURITY_OFFICER}:
        tiles.append(Tile(_("Audit events"), audit_event_count(), reverse("console:audit")))
    return tiles
