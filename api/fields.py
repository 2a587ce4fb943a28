"""Serializer fields shared by the API views."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.filtersets import INT64_MAX


class IdField(serializers.IntegerField):
    """A primary key: a whole number from 1 to a bigint's maximum. A larger one is a 400 (the
    schema says so), never a database error."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", INT64_MAX)
        super().__init__(**kwargs)
