from __future__ import annotations

from rest_framework.request import Request

from cms.callers import Caller
from core.roles import Role

OP, HD, SO, AU = (
    Role.ISSUANCE_OPERATOR,
    Role.HELPDESK_AGENT,
    Role.SECURITY_OFFICER,
    Role.AUDITOR,
)
REGISTRY_READERS = (OP, HD, SO, AU)


def caller_of(request: Request) -> Caller:
    return Caller.for_user(request.user)
