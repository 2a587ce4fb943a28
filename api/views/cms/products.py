from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.views.cms.common import REGISTRY_READERS
from cms import selectors
from cms.models import Product


class ProductOutputSerializer(serializers.ModelSerializer[Product]):
    class Meta:
        model = Product
        fields = (
            "id",
            "name",
            "version",
            "status",
            "validity_years",
            "requires_second_approval",
            "definition",
            "definition_sha256",
            "created_at",
        )


class ProductListApi(generics.ListAPIView[Product]):
    roles = REGISTRY_READERS
    serializer_class = ProductOutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.product_list()

    @extend_schema(operation_id="products_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)


class ProductDetailApi(APIView):
    roles = REGISTRY_READERS

    @extend_schema(responses=ProductOutputSerializer, operation_id="products_retrieve")
    def get(self, request: Request, product_id: int) -> Response:
        return Response(ProductOutputSerializer(selectors.product_get(product_id=product_id)).data)
