"""Every endpoint under /api/v1/, discovered from the URL configuration (so new views join the
role matrix without anyone editing a list)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

SAMPLE_BY_CONVERTER = {
    "int": "1",
    "str": "x",
    "slug": "x",
    "uuid": str(uuid.UUID(int=1)),
    "path": "x",
}


@dataclass(frozen=True)
class Endpoint:
    url: str
    method: str
    view_class: type

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.url}"


def _walk(patterns: list, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        else:
            yield route, pattern


def _concrete(route: str) -> str:
    def sample(match: re.Match[str]) -> str:
        converter = match.group(1) or "str"
        return SAMPLE_BY_CONVERTER.get(converter, "x")

    return "/" + re.sub(r"<(?:(\w+):)?\w+>", sample, route)


def api_endpoints() -> list[Endpoint]:
    found = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if not route.startswith("api/v1/"):
            continue
        view_class = getattr(pattern.callback, "view_class", None) or getattr(
            pattern.callback, "cls", None
        )
        assert view_class is not None, f"{route} is not a class-based API view"
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view_class, method):
                found.append(Endpoint(_concrete(route), method, view_class))
    return found
