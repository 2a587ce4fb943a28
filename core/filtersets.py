"""Filters shared by the API and the console (both sit above core)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from core.models import AuditEvent

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
    seq_min = django_filters.NumberFilter(field_name="seq", lookup_expr="gte")
    seq_max = django_filters.NumberFilter(field_name="seq", lookup_expr="lte")

    class Meta:
        model = AuditEvent
        fields: list[str] = []
