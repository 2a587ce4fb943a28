"""Filter fields shared by the API's FilterSets."""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

_MAX_OFFSET = dt.timedelta(hours=14)  # the widest offset in use; PostgreSQL refuses beyond ±15:59


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant, normalised to UTC; offsets and dates the database cannot hold are a
    validation error (400), not a database error."""

    default_error_messages = {
        "offset": "The UTC offset must be within ±14:00.",
        "range": "The date is out of range.",
    }

    def to_python(self, value: Any) -> dt.datetime | None:
        try:
            parsed: dt.datetime | None = super().to_python(value)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["range"], code="range") from None
        if parsed is None or parsed.tzinfo is None:
            return parsed
        offset = parsed.utcoffset()
        if offset is not None and abs(offset) > _MAX_OFFSET:
            raise forms.ValidationError(self.error_messages["offset"], code="offset")
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["range"], code="range") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField
