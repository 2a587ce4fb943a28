from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from console.sections import sections_for
from core.roles import roles_of


def sections(request: HttpRequest) -> dict[str, Any]:
    """The header's sections, those the signed-in user's roles open (nothing for visitors), and
    which one the current page belongs to (``aria-current`` in the navigation)."""
    visible = sections_for(roles_of(getattr(request, "user", None)))
    path = getattr(request, "path", "")
    current = ""
    for section in visible:
        try:
            url = reverse(section.url_name)
        except NoReverseMatch:  # pragma: no cover - a registry entry without its URL
            continue
        if path.startswith(url) and len(url) > len(current):
            current = url
    return {
        "sections": [
            {"url_name": s.url_name, "title": s.title, "current": reverse(s.url_name) == current}
            for s in visible
        ]
    }
