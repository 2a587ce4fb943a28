from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.serializers import JsonInputSerializer
from api.views.cms.common import REGISTRY_READERS, caller_of
from cms import lifecycle, selectors
from cms.choices import CardStatus, RevokeReason
from cms.filtersets import CardApprovalFilterSet, CardFilterSet, DenyListFilterSet
from cms.models import Card, CardTransitionApproval, DenyListEntry
from cms.services.cards import (
    TransitionOutcome,
    allowed_names,
    card_transition,
    card_transition_approve,
    card_transition_reject,
)
from core.errors import BadInput, Conflict, PolicyViolation, ServiceUnavailable
from core.roles import Role

TRANSITION_ROLES = (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT, Role.SECURITY_OFFICER)


class CardOutputSerializer(serializers.ModelSerializer[Card]):
    holder = serializers.SerializerMethodField()
    product = serializers.SerializerMethodField()
    pool = serializers.SerializerMethodField()

    class Meta:
        model = Card
        fields: tuple[str, ...] = (
            "id",
            "card_number",
            "chip_serial",
            "desfire_uid",
            "transport_key_version",
            "product",
            "pool",
            "holder",
            "card_type",
            "status",
            "revoke_reason",
            "migration_overlap",
            "issued_at",
            "activated_at",
            "expires_at",
            "status_changed_at",
        )

    def get_product(self, obj: Card) -> str:
        return str(obj.product)

    def get_pool(self, obj: Card) -> str | None:
        return obj.pool.code if obj.pool else None

    def get_holder(self, card: Card) -> dict[str, str] | None:
        if card.holder is None:
            return None
        h = card.holder
        return {
            "id": str(h.pk),
            "national_id": h.national_id,
            "name": f"{h.last_name} {h.first_name}",
        }


class ApprovalOutputSerializer(serializers.ModelSerializer[CardTransitionApproval]):
    requested_by = serializers.CharField(source="requested_by.username")
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)

    class Meta:
        model = CardTransitionApproval
        fields = (
            "id",
            "card",
            "transition",
            "reason",
            "status",
            "requested_by",
            "decided_by",
            "created_at",
            "decided_at",
        )


class TransitionOutputSerializer(serializers.Serializer[dict[str, Any]]):
    applied = serializers.BooleanField()
    card = CardOutputSerializer()
    pending_approval = ApprovalOutputSerializer(allow_null=True)


def _outcome(outcome: TransitionOutcome) -> Response:
    waiting = outcome.approval is not None and not outcome.applied
    data = {
        "applied": outcome.applied,
        "card": outcome.card,
        "pending_approval": outcome.approval if waiting else None,
    }
    return Response(TransitionOutputSerializer(data).data, status=202 if waiting else 200)


class CardListApi(generics.ListAPIView[Card]):
    """Search cards by number, chip serial, DESFire UID, holder (id, national id, name), state."""

    roles = REGISTRY_READERS
    filterset_class = CardFilterSet
    serializer_class = CardOutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.card_list()

    @extend_schema(operation_id="cards_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)


class CardDetailApi(APIView):
    """A card, with the transitions the caller may apply to it now."""

    roles = REGISTRY_READERS

    class OutputSerializer(CardOutputSerializer):
        allowed_transitions = serializers.SerializerMethodField()

        class Meta(CardOutputSerializer.Meta):
            fields = (*CardOutputSerializer.Meta.fields, "allowed_transitions")

        def get_allowed_transitions(self, card: Card) -> list[str]:
            return allowed_names(CardStatus(card.status), self.context["caller"])

    @extend_schema(responses=OutputSerializer, operation_id="cards_retrieve")
    def get(self, request: Request, card_id: UUID) -> Response:
        card = selectors.card_get(card_id=card_id)
        return Response(self.OutputSerializer(card, context={"caller": caller_of(request)}).data)


class CardTransitionApi(APIView):
    """Apply a lifecycle transition (200), or record a dual-control one for approval (202)."""

    roles = TRANSITION_ROLES
    errors = (Conflict, PolicyViolation, ServiceUnavailable)

    class InputSerializer(JsonInputSerializer):
        transition = serializers.ChoiceField(
            choices=[t.name for t in lifecycle.person_transitions()]
        )
        reason = serializers.ChoiceField(choices=RevokeReason.choices, required=False)

    @extend_schema(
        request=InputSerializer,
        responses={200: TransitionOutputSerializer, 202: TransitionOutputSerializer},
        operation_id="cards_transition",
    )
    def post(self, request: Request, card_id: UUID) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        outcome = card_transition(
            card_id=card_id,
            transition=serializer.validated_data["transition"],
            reason=serializer.validated_data.get("reason"),
            caller=caller_of(request),
        )
        return _outcome(outcome)


class CardApprovalListApi(generics.ListAPIView[CardTransitionApproval]):
    roles = (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT, Role.SECURITY_OFFICER, Role.AUDITOR)
    filterset_class = CardApprovalFilterSet
    serializer_class = ApprovalOutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.card_approval_list()

    @extend_schema(operation_id="cards_approvals_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)


class CardApprovalApproveApi(APIView):
    """The second person approves a pending transition; it is applied at once."""

    roles = TRANSITION_ROLES
    errors = (BadInput, Conflict, PolicyViolation, ServiceUnavailable)

    @extend_schema(
        request=None, responses=TransitionOutputSerializer, operation_id="cards_approvals_approve"
    )
    def post(self, request: Request, approval_id: int) -> Response:
        return _outcome(card_transition_approve(approval_id=approval_id, caller=caller_of(request)))


class CardApprovalRejectApi(APIView):
    roles = TRANSITION_ROLES
    errors = (Conflict,)

    @extend_schema(
        request=None, responses=ApprovalOutputSerializer, operation_id="cards_approvals_reject"
    )
    def post(self, request: Request, approval_id: int) -> Response:
        approval = card_transition_reject(approval_id=approval_id, caller=caller_of(request))
        return Response(ApprovalOutputSerializer(approval).data)


class DenyListEntrySerializer(serializers.ModelSerializer[DenyListEntry]):
    class Meta:
        model = DenyListEntry
        fields = ("card", "desfire_uid", "card_number", "reason", "created_at")


class DenyListApi(generics.ListAPIView[DenyListEntry]):
    """Contactless credentials that access-control readers must refuse."""

    roles = (Role.SECURITY_OFFICER, Role.HELPDESK_AGENT, Role.AUDITOR)
    filterset_class = DenyListFilterSet
    serializer_class = DenyListEntrySerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.deny_list()

    @extend_schema(operation_id="contactless_deny_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)
