"""After issuance (issue 15): report a card lost, stolen or damaged; lend a temporary card."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.fields import IdField
from api.serializers import JsonInputSerializer
from api.views.cms.cards import CardOutputSerializer
from api.views.cms.common import caller_of
from api.views.cms.requests import RequestOutputSerializer
from cms.choices import LossReason
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
