"""After issuance (issue 15): report a card lost, stolen or damaged; lend a temporary card;
the renewal campaign."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.fields import IdField
from api.serializers import JsonInputSerializer
from api.views.cms.cards import CardOutputSerializer
from api.views.cms.common import REGISTRY_READERS, caller_of
from api.views.cms.requests import RequestOutputSerializer
from cms.choices import LossReason
from cms.models import RenewalInvitation
from cms.services.expiry import campaign
from cms.services.replacement import card_report_loss, replacement_temporary_link
from core.errors import Conflict, NotFound, PolicyViolation, ServiceUnavailable
from core.roles import Role


class LossReportOutputSerializer(serializers.Serializer[dict[str, Any]]):
    revoked = serializers.BooleanField()
    card = CardOutputSerializer()
    request = RequestOutputSerializer()


class CardReportLossApi(APIView):
    """One act for a lost, stolen or damaged card, on the holder's behalf: a lost or stolen card
    is revoked at once (keyCompromise, deny list) and an expedited replacement request is filed;
    a damaged card is revoked (superseded) when its replacement is activated."""

    roles = (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT)
    errors = (NotFound, Conflict, PolicyViolation, ServiceUnavailable)

    class InputSerializer(JsonInputSerializer):
        reason = serializers.ChoiceField(choices=LossReason.choices)
        identity_check = serializers.CharField(
            max_length=200, help_text="how the holder's identity was checked"
        )
        product_id = IdField(
            required=False, help_text="the replacement's product (default: the card's)"
        )
        pool_id = IdField(required=False)

    @extend_schema(
        request=InputSerializer,
        responses=LossReportOutputSerializer,
        operation_id="cards_report_loss",
    )
    def post(self, request: Request, card_id: UUID) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        report = card_report_loss(
            card_id=card_id, caller=caller_of(request), **serializer.validated_data
        )
        data = {"revoked": report.revoked, "card": report.card, "request": report.request}
        return Response(LossReportOutputSerializer(data).data)


class RequestTemporaryCardApi(APIView):
    """Link the temporary card lent to the holder of a replacement request; it is revoked
    (superseded) when the replacement is activated."""

    roles = (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT)
    errors = (NotFound, Conflict, PolicyViolation)

    class InputSerializer(JsonInputSerializer):
        card_id = serializers.UUIDField()

    @extend_schema(
        request=InputSerializer,
        responses=RequestOutputSerializer,
        operation_id="requests_temporary_card",
    )
    def post(self, request: Request, request_id: UUID) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        done = replacement_temporary_link(
            request_id=request_id,
            card_id=serializer.validated_data["card_id"],
            caller=caller_of(request),
        )
        return Response(RequestOutputSerializer(done).data)


class CampaignCountsSerializer(serializers.Serializer[dict[str, int]]):
    due = serializers.IntegerField()
    invited = serializers.IntegerField(required=False)
    requested = serializers.IntegerField(required=False)
    done = serializers.IntegerField()
    overdue = serializers.IntegerField()


class RenewalCampaignApi(APIView):
    """The renewal campaign: certificates to renew on their card (due: expiring within the window
    and not invited yet; invited; done; overdue: invited and expired) and cards to renew (due;
    requested; done; overdue: past their end, not EXPIRED yet)."""

    roles = REGISTRY_READERS

    class OutputSerializer(serializers.Serializer[dict[str, Any]]):
        certificates = CampaignCountsSerializer()
        cards = CampaignCountsSerializer()

    @extend_schema(responses=OutputSerializer, operation_id="renewals_campaign")
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(campaign()).data)


class RenewalInvitationSerializer(serializers.ModelSerializer[RenewalInvitation]):
    card_number = serializers.CharField(source="card.card_number", allow_null=True)

    class Meta:
        model = RenewalInvitation
        fields = (
            "id",
            "card",
            "card_number",
            "certificates_not_after",
            "status",
            "created_at",
            "done_at",
        )


class RenewalInvitationListApi(generics.ListAPIView[RenewalInvitation]):
    """Renewal invitations, soonest expiry first; ``?status=invited|done``."""

    roles = REGISTRY_READERS
    serializer_class = RenewalInvitationSerializer
    filterset_fields = ("status",)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return RenewalInvitation.objects.select_related("card").order_by(
            "certificates_not_after", "pk"
        )

    @extend_schema(operation_id="renewals_invitations_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)
