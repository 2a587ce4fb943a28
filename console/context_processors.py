from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from console.sections import sections_for
from core.roles import roles_of


def sections(request: HttpRequest) -> dict[str, Any]:
    """The header's sections, those the signed-in user's roles open (nothing for visitors)."""
    return {"sections": sections_for(roles_of(getattr(request, "user", None)))}
