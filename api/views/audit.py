from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from api.pagination import KeysetPagination
from core.audit import audit_event_list
from core.filtersets import AuditEventFilter
from core.models import AuditEvent
from core.roles import Role


class AuditEventPagination(KeysetPagination):
    """Keyset pages on ``seq``: no COUNT(*) of an ever-growing table, stable while it grows."""

    ordering = "-seq"
    page_size = 50
    max_page_size = 500


class AuditEventListApi(generics.ListAPIView[AuditEvent]):
    """The audit log, newest first, for auditors and security officers."""

    roles = (Role.AUDITOR, Role.SECURITY_OFFICER)
    filterset_class = AuditEventFilter
    pagination_class = AuditEventPagination

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
