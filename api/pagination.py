"""Pagination of the list endpoints. The page and page size are checked as the schema declares
them: a value that is not a whole number in range is a 400, never silently replaced by the
default (DRF's own classes fall back to the first page or the default size)."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from core.filtersets import INT64_MAX

_DIGITS = re.compile(r"[0-9]{1,19}")


def query_integer(request: Request, name: str, *, maximum: int) -> int | None:
    """The query parameter ``name`` as a whole number from 1 to ``maximum``; None if absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    value = int(raw) if _DIGITS.fullmatch(raw) else 0
    if not 1 <= value <= maximum:
        raise ValidationError({name: [f"A whole number from 1 to {maximum}."]})
    return value


def _bounded(parameters: list[dict[str, Any]], bounds: dict[str, int]) -> list[dict[str, Any]]:
    for parameter in parameters:
        maximum = bounds.get(parameter["name"])
        if maximum is not None:
            parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": maximum}
    return parameters


class Pagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = settings.API_PAGE_SIZE_MAX
    last_page_strings = ()  # the schema says the page is a number: no "last"

    def get_page_size(self, request: Request) -> int:
        size = query_integer(request, self.page_size_query_param, maximum=self.max_page_size)
        return self.page_size if size is None else size  # type: ignore[return-value]

    def get_page_number(self, request: Request, paginator: Any) -> int:
        # A number past the last page stays the paginator's 404, as documented.
        return query_integer(request, self.page_query_param, maximum=INT64_MAX) or 1

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return _bounded(
            super().get_schema_operation_parameters(view),
            {self.page_query_param: INT64_MAX, self.page_size_query_param: self.max_page_size},
        )


class KeysetPagination(pagination.CursorPagination):
    """Keyset pages (no COUNT(*) of a growing table); an unknown cursor is a 404 (no such page)."""

    page_size_query_param = "page_size"
    max_page_size = settings.API_PAGE_SIZE_MAX

    def get_page_size(self, request: Request) -> int:
        size = query_integer(request, self.page_size_query_param, maximum=self.max_page_size)
        return self.page_size if size is None else size  # type: ignore[return-value]

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return _bounded(
            super().get_schema_operation_parameters(view),
            {self.page_size_query_param: self.max_page_size},
        )
