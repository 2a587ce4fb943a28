from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.fields import UploadField
from api.serializers import JsonInputSerializer
from api.views.cms.common import REGISTRY_READERS, caller_of
from cms import selectors
from cms.choices import CardType, HolderStatus, Profession
from cms.filtersets import HolderFilterSet
from cms.models import Holder
from cms.services.holder_import import holder_import
from cms.services.holders import HolderData, holder_create, holder_update
from core.errors import Conflict
from core.roles import Role


class HolderOutputSerializer(serializers.ModelSerializer[Holder]):
    class Meta:
        model = Holder
        fields = (
            "id",
            "national_id",
            "last_name",
            "first_name",
            "profession",
            "card_type",
            "status",
            "address_line1",
            "address_line2",
            "postal_code",
            "city",
            "country",
            "departement",
            "created_at",
            "updated_at",
        )


class HolderInputSerializer(JsonInputSerializer):
    national_id = serializers.CharField(max_length=40)
    last_name = serializers.CharField(max_length=100)
    first_name = serializers.CharField(max_length=100)
    profession = serializers.ChoiceField(choices=Profession.choices)
    card_type = serializers.ChoiceField(choices=CardType.choices, default=CardType.CPS)
    status = serializers.ChoiceField(choices=HolderStatus.choices, default=HolderStatus.ACTIVE)
    address_line1 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    address_line2 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    postal_code = serializers.RegexField(r"^\s*(?:[0-9]{5})?\s*$", required=False, allow_blank=True)
    city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    country = serializers.CharField(max_length=2, required=False, default="FR")


class HolderListApi(generics.ListAPIView[Holder]):
    """Search holders by national identifier, name, profession, département, card type, status."""

    roles = REGISTRY_READERS
    filterset_class = HolderFilterSet
    serializer_class = HolderOutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.holder_list()

    @extend_schema(operation_id="holders_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)


class HolderCreateApi(APIView):
    roles = (Role.ISSUANCE_OPERATOR,)
    errors = (Conflict,)

    @extend_schema(
        request=HolderInputSerializer,
        responses={201: HolderOutputSerializer},
        operation_id="holders_create",
    )
    def post(self, request: Request) -> Response:
        serializer = HolderInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        holder = holder_create(
            data=HolderData(**serializer.validated_data), caller=caller_of(request)
        )
        return Response(HolderOutputSerializer(holder).data, status=201)


class HolderDetailApi(APIView):
    roles = REGISTRY_READERS

    @extend_schema(responses=HolderOutputSerializer, operation_id="holders_retrieve")
    def get(self, request: Request, holder_id: UUID) -> Response:
        return Response(HolderOutputSerializer(selectors.holder_get(holder_id=holder_id)).data)


class HolderUpdateApi(APIView):
    roles = (Role.ISSUANCE_OPERATOR,)

    class InputSerializer(HolderInputSerializer):
        national_id = None  # type: ignore[assignment]

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, partial=True, **kwargs)

    @extend_schema(
        request=InputSerializer, responses=HolderOutputSerializer, operation_id="holders_update"
    )
    def post(self, request: Request, holder_id: UUID) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        holder = holder_update(
            holder_id=holder_id, changes=dict(serializer.validated_data), caller=caller_of(request)
        )
        return Response(HolderOutputSerializer(holder).data)


class HolderImportApi(APIView):
    """Upload an RPPS-style CSV extract (multipart field ``file``); returns the import report."""

    roles = (Role.ISSUANCE_OPERATOR,)
    parser_classes = (MultiPartParser,)
    max_rejected_listed = 1000

    class InputSerializer(serializers.Serializer[dict[str, Any]]):
        file = UploadField()

    class OutputSerializer(serializers.Serializer[dict[str, Any]]):
        sha256 = serializers.CharField()
        total = serializers.IntegerField()
        created = serializers.IntegerField()
        updated = serializers.IntegerField()
        unchanged = serializers.IntegerField()
        cards_revoked = serializers.IntegerField()
        requests_cancelled = serializers.IntegerField()
        rejected_count = serializers.IntegerField()
        rejected = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        request={"multipart/form-data": InputSerializer},
        responses=OutputSerializer,
        operation_id="holders_import",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        report = holder_import(
            content=serializer.validated_data["file"].read(), caller=caller_of(request)
        )
        data = {
            "sha256": report.sha256,
            "total": report.total,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "cards_revoked": report.cards_revoked,
            "requests_cancelled": report.requests_cancelled,
            "rejected_count": len(report.rejected),
            "rejected": [
                {"line": r.line, "national_id": r.national_id, "errors": r.errors}
                for r in report.rejected[: self.max_rejected_listed]
            ],
        }
        return Response(self.OutputSerializer(data).data)
