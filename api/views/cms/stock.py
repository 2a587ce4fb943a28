from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.fields import IdField, UploadField
from api.serializers import JsonInputSerializer
from api.views.cms.common import caller_of
from cms import selectors
from cms.models import SitePool, StockBatch
from cms.services.stock import pool_create, stock_assign_pool, stock_batch_register
from core.errors import Conflict, NotFound, PolicyViolation, ServiceUnavailable
from core.roles import Role

STOCK_READERS = (Role.ISSUANCE_OPERATOR, Role.SECURITY_OFFICER, Role.AUDITOR)


class PoolOutputSerializer(serializers.ModelSerializer[SitePool]):
    class Meta:
        model = SitePool
        fields = ("id", "code", "name")


class BatchOutputSerializer(serializers.ModelSerializer[StockBatch]):
    product = serializers.SerializerMethodField()

    class Meta:
        model = StockBatch
        fields = (
            "id",
            "vendor",
            "reference",
            "product",
            "card_count",
            "file_sha256",
            "received_at",
        )

    def get_product(self, obj: StockBatch) -> str:
        return str(obj.product)


class PoolListApi(generics.ListAPIView[SitePool]):
    roles = STOCK_READERS
    serializer_class = PoolOutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.pool_list()

    @extend_schema(operation_id="stock_pools_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)


class PoolCreateApi(APIView):
    roles = (Role.ISSUANCE_OPERATOR,)
    errors = (Conflict,)

    class InputSerializer(JsonInputSerializer):
        code = serializers.RegexField(r"^\s*[-a-z0-9_]{1,32}\s*$")  # trimmed, then checked
        name = serializers.CharField(max_length=100)

    @extend_schema(
        request=InputSerializer,
        responses={201: PoolOutputSerializer},
        operation_id="stock_pools_create",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pool = pool_create(caller=caller_of(request), **serializer.validated_data)
        return Response(PoolOutputSerializer(pool).data, status=201)


class BatchListApi(generics.ListAPIView[StockBatch]):
    roles = STOCK_READERS
    serializer_class = BatchOutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.batch_list()

    @extend_schema(operation_id="stock_batches_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)


class BatchRegisterApi(APIView):
    """Register a vendor batch file (CSV: chip_serial, desfire_uid, transport_key_version)."""

    roles = (Role.ISSUANCE_OPERATOR,)
    errors = (NotFound, Conflict, PolicyViolation, ServiceUnavailable)
    parser_classes = (MultiPartParser,)

    class InputSerializer(serializers.Serializer[dict[str, Any]]):
        vendor = serializers.CharField(max_length=64)
        reference = serializers.CharField(max_length=64)
        product_id = IdField()
        file = UploadField()

    @extend_schema(
        request={"multipart/form-data": InputSerializer},
        responses={201: BatchOutputSerializer},
        operation_id="stock_batches_register",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        batch = stock_batch_register(
            vendor=data["vendor"],
            reference=data["reference"],
            product_id=data["product_id"],
            content=data["file"].read(),
            caller=caller_of(request),
        )
        return Response(BatchOutputSerializer(batch).data, status=201)


class StockAssignPoolApi(APIView):
    """Move blank cards (a batch, or listed cards) into a site pool."""

    roles = (Role.ISSUANCE_OPERATOR,)
    errors = (NotFound, Conflict)

    class InputSerializer(JsonInputSerializer):
        exactly_one_of = ("batch_id", "card_ids")
        pool_id = IdField()
        batch_id = IdField(required=False)
        card_ids = serializers.ListField(
            child=serializers.UUIDField(), required=False, max_length=10000
        )

    class OutputSerializer(serializers.Serializer[dict[str, int]]):
        moved = serializers.IntegerField()

    @extend_schema(
        request=InputSerializer, responses=OutputSerializer, operation_id="stock_assign_pool"
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        moved = stock_assign_pool(caller=caller_of(request), **serializer.validated_data)
        return Response(self.OutputSerializer({"moved": moved}).data)


class StockCountsApi(APIView):
    """Cards counted by pool, product and state; ``?pool=<id>&product=<id>`` narrow it."""

    roles = STOCK_READERS

    class FilterSerializer(serializers.Serializer[dict[str, Any]]):
        pool = IdField(required=False)
        product = IdField(required=False)

    class OutputSerializer(serializers.Serializer[dict[str, Any]]):
        pool = serializers.CharField()
        product = serializers.CharField()
        counts = serializers.DictField(child=serializers.IntegerField())

    @extend_schema(
        parameters=[FilterSerializer],
        responses=OutputSerializer(many=True),
        operation_id="stock_counts",
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = selectors.stock_counts(
            pool_id=filters.validated_data.get("pool"),
            product_id=filters.validated_data.get("product"),
        )
        return Response(self.OutputSerializer(cast(Any, rows), many=True).data)
