from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from api.filters import UtcIsoDateTimeFilter
from core.audit import audit_event_list
from core.models import AuditEvent
from core.roles import Role


class AuditEventFilter(django_filters.FilterSet):
    action = django_filters.CharFilter()
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


class AuditEventListApi(generics.ListAPIView[AuditEvent]):
    """The audit log, newest first, for auditors and security officers."""

    roles = (Role.AUDITOR, Role.SECURITY_OFFICER)
    filterset_class = AuditEventFilter

    class OutputSerializer(serializers.ModelSerializer[AuditEvent]):
        actor = serializers.SerializerMethodField()

        class Meta:
            model = AuditEvent
            fields = (
                "seq",
                "occurred_at",
                "actor",
                "action",
                "object_type",
                "object_id",
                "details",
                "prev_hash",
                "hash",
            )

        def get_actor(self, event: AuditEvent) -> dict[str, str]:
            return {"kind": event.actor_kind, "id": event.actor_id, "label": event.actor_label}

    serializer_class = OutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return audit_event_list()

    @extend_schema(operation_id="audit_events_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)
