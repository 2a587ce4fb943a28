"""Filters shared by the API and the console (both sit above core)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

from core.models import AuditEvent

INT64_MAX = 2**63 - 1  # PostgreSQL bigint: every primary key and sequence number fits in it
_INTEGER = re.compile(r"-?[0-9]{1,20}")


class StrictIntegerField(forms.IntegerField):
    """Digits only: not "1.0", "1e3" or " 1 ", which ``forms.IntegerField`` lets through."""

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        if not isinstance(value, str) or _INTEGER.fullmatch(value) is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return int(value)


class IntegerFilter(django_filters.Filter):
    """A whole number from ``min_value`` to a bigint: anything else is a 400, never a database
    error (an integer beyond 64 bits) nor a silent miss."""

    field_class = StrictIntegerField

    def __init__(self, *args: Any, min_value: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, min_value=min_value, max_value=INT64_MAX, **kwargs)
        schema = {"type": "integer", "format": "int64", "minimum": min_value, "maximum": INT64_MAX}
        extend_schema_field(schema)(self)


class StrictBooleanField(forms.Field):
    """``true`` or ``false``, as the schema's boolean is written in a query string; anything else
    is refused (``NullBooleanField`` reads an unknown value as "no filter")."""

    widget = forms.TextInput
    _VALUES = {"true": True, "false": False}

    def to_python(self, value: Any) -> bool | None:
        if value in self.empty_values:
            return None
        if value not in self._VALUES:
            raise forms.ValidationError("Use true or false.", code="invalid")
        return self._VALUES[value]


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        extend_schema_field({"type": "boolean"})(self)  # not the method's hint: a boolean


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant, normalised to UTC (PostgreSQL refuses offsets beyond ±15:59, RFC 3339
    allows ±23:59). An instant that falls before year 1 or after 9999 in UTC is the first or last
    one a datetime can hold: as a bound of a search, it means the same."""

    default_error_messages = {"range": "The date is out of range."}

    def to_python(self, value: Any) -> dt.datetime | None:
        try:
            parsed: dt.datetime | None = super().to_python(value)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["range"], code="range") from None
        if parsed is None or parsed.tzinfo is None:
            return parsed
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:
            if parsed.year == dt.MINYEAR:
                return dt.datetime.min.replace(tzinfo=dt.UTC)
            return dt.datetime.max.replace(tzinfo=dt.UTC)


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class AuditEventFilter(django_filters.FilterSet):
    """``action`` matches a prefix (``card.`` finds every card action); the rest match exactly."""

    action = django_filters.CharFilter(lookup_expr="startswith")
    object_type = django_filters.CharFilter()
    object_id = django_filters.CharFilter()
    actor = django_filters.CharFilter(field_name="actor_label")
    actor_kind = django_filters.ChoiceFilter(
        choices=[("user", "user"), ("station", "station"), ("system", "system")]
    )
    occurred_after = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")
    seq_min = IntegerFilter(field_name="seq", lookup_expr="gte", min_value=0)
    seq_max = IntegerFilter(field_name="seq", lookup_expr="lte", min_value=0)

    class Meta:
        model = AuditEvent
        fields: list[str] = []
