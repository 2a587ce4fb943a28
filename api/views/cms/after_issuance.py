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
from api.views.dual_control import _person
from cms.choices import LossReason, RevokeReason
from cms.models import BulkRevocation, CardRenewal, RenewalInvitation
from cms.personalization.renewal import renewal_abandon, renewal_list_open
from cms.services.bulk_revocation import KIND as BULK_KIND
from cms.services.bulk_revocation import bulk_revocation_preview
from cms.services.expiry import campaign
from cms.services.replacement import card_report_loss, replacement_temporary_link
from core.dual_control import act_request
from core.errors import BadInput, Conflict, NotFound, PolicyViolation, ServiceUnavailable
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


class BulkSelectionSerializer(JsonInputSerializer):
    selection = serializers.DictField(
        help_text='exactly one of {"batch_id": N}, {"product_id": N}, '
        '{"issued_window": {"from": ISO 8601, "to": ISO 8601}}, {"card_numbers": [...]}'
    )


class BulkRevocationPreviewApi(APIView):
    """How many cards in service a selection would revoke, by status and product."""

    roles = (Role.SECURITY_OFFICER,)

    class OutputSerializer(serializers.Serializer[dict[str, Any]]):
        total = serializers.IntegerField()
        by_status = serializers.DictField(child=serializers.IntegerField())
        by_product = serializers.DictField(child=serializers.IntegerField())

    @extend_schema(
        request=BulkSelectionSerializer,
        responses=OutputSerializer,
        operation_id="bulk_revocations_preview",
    )
    def post(self, request: Request) -> Response:
        serializer = BulkSelectionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        preview = bulk_revocation_preview(selection=serializer.validated_data["selection"])
        return Response(self.OutputSerializer(preview).data)


class BulkRevocationLaunchApi(APIView):
    """Ask for a bulk revocation (202): a second security officer approves it at
    ``/api/v1/dual-control/acts/<id>/approve``, which starts it."""

    roles = (Role.SECURITY_OFFICER,)

    class InputSerializer(BulkSelectionSerializer):
        reason = serializers.ChoiceField(choices=RevokeReason.choices, default="compromised")
        justification = serializers.CharField(max_length=500, help_text="read by the approver")

    class OutputSerializer(serializers.Serializer[dict[str, Any]]):
        act_id = serializers.IntegerField()
        summary = serializers.CharField()

    @extend_schema(
        request=InputSerializer,
        responses={202: OutputSerializer},
        operation_id="bulk_revocations_launch",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        act = act_request(
            kind=BULK_KIND,
            params={"selection": data["selection"], "reason": data["reason"]},
            user=_person(request),
            reason=data["justification"],
        )
        return Response(self.OutputSerializer({"act_id": act.pk, "summary": act.summary}).data, 202)


class BulkRevocationSerializer(serializers.ModelSerializer[BulkRevocation]):
    class Meta:
        model = BulkRevocation
        fields = (
            "id", "selection", "reason", "status", "act_id", "total", "revoked",
            "created_at", "updated_at", "finished_at",
        )  # fmt: skip


class BulkRevocationListApi(generics.ListAPIView[BulkRevocation]):
    """Bulk revocations, newest first, with their progress (revoked of total)."""

    roles = (Role.SECURITY_OFFICER, Role.AUDITOR)
    serializer_class = BulkRevocationSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return BulkRevocation.objects.order_by("-created_at", "-pk")

    @extend_schema(operation_id="bulk_revocations_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)


class BulkRevocationDetailApi(APIView):
    roles = (Role.SECURITY_OFFICER, Role.AUDITOR)

    @extend_schema(responses=BulkRevocationSerializer, operation_id="bulk_revocations_retrieve")
    def get(self, request: Request, bulk_id: int) -> Response:
        bulk = BulkRevocation.objects.filter(pk=bulk_id).first()
        if bulk is None:
            raise NotFound(f"No bulk revocation #{bulk_id}.")
        return Response(BulkRevocationSerializer(bulk).data)


class CardRenewalSerializer(serializers.ModelSerializer[CardRenewal]):
    card_number = serializers.CharField(source="card.card_number", allow_null=True)
    station = serializers.CharField(source="station.name", allow_null=True, default=None)

    class Meta:
        model = CardRenewal
        fields = (
            "id",
            "card",
            "card_number",
            "station",
            "status",
            "phase",
            "batches",
            "error",
            "started_at",
            "updated_at",
            "ended_at",
        )


class RenewalOpenListApi(generics.ListAPIView[CardRenewal]):
    """Certificate renewals on the card running or interrupted (the card was torn out, the
    station lost), the oldest activity first: the ones to resume or abandon."""

    roles = REGISTRY_READERS
    serializer_class = CardRenewalSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return renewal_list_open()

    @extend_schema(operation_id="renewals_open_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)


class RenewalAbandonApi(APIView):
    """Abandon a renewal whose card will not come back: its pending certificates that never
    reached the card are revoked (cessation of operation); the card keeps its current pair.
    Audited (``card.renewal_abandon``) with the reason."""

    roles = (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT)  # cms.personalization.renewal
    errors = (BadInput, NotFound, Conflict)

    class InputSerializer(JsonInputSerializer):
        reason = serializers.CharField(max_length=200, help_text="why the renewal is abandoned")

    @extend_schema(
        request=InputSerializer,
        responses=CardRenewalSerializer,
        operation_id="renewals_abandon",
    )
    def post(self, request: Request, renewal_id: UUID) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        renewal = renewal_abandon(
            renewal_id=renewal_id,
            caller=caller_of(request),
            reason=serializer.validated_data["reason"],
        )
        return Response(CardRenewalSerializer(renewal).data)
