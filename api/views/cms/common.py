from __future__ import annotations

from rest_framework.request import Request

from cms.callers import Caller
from core.roles import Role

REGISTRY_READERS = (
    Role.ISSUANCE_OPERATOR,
    Role.HELPDESK_AGENT,
    Role.SECURITY_OFFICER,
    Role.AUDITOR,
)


def caller_of(request: Request) -> Caller:
    return Caller.for_user(request.user)
