from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.fields import IdField
from api.serializers import JsonInputSerializer
from api.views.cms.common import REGISTRY_READERS, caller_of
from cms import selectors
from cms.choices import RequestKind
from cms.filtersets import CardRequestFilterSet
from cms.models import CardRequest
from cms.services.requests import (
    request_approve,
    request_create,
    request_queue,
    request_reject,
    request_submit,
)
from core.errors import Conflict, NotFound, PolicyViolation
from core.roles import Role


class RequestOutputSerializer(serializers.ModelSerializer[CardRequest]):
    holder_national_id = serializers.CharField(source="holder.national_id")
    product = serializers.SerializerMethodField()
    approved_by = serializers.CharField(
        source="approved_by.username", allow_null=True, default=None
    )
    rejected_by = serializers.CharField(
        source="rejected_by.username", allow_null=True, default=None
    )

    class Meta:
        model = CardRequest
        fields = (
            "id",
            "kind",
            "status",
            "holder",
            "holder_national_id",
            "product",
            "replaces",
            "card",
            "pool",
            "requires_second_approval",
            "expedited",
            "loss_reason",
            "identity_check",
            "temporary_card",
            "requested_by_label",
            "approved_by",
            "rejected_by",
            "note",
            "decision_note",
            "created_at",
            "submitted_at",
            "decided_at",
            "completed_at",
        )

    def get_product(self, obj: CardRequest) -> str:
        return str(obj.product)


class RequestListApi(generics.ListAPIView[CardRequest]):
    roles = REGISTRY_READERS
    filterset_class = CardRequestFilterSet
    serializer_class = RequestOutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.request_list()

    @extend_schema(operation_id="requests_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)


class RequestDetailApi(APIView):
    roles = REGISTRY_READERS

    @extend_schema(responses=RequestOutputSerializer, operation_id="requests_retrieve")
    def get(self, request: Request, request_id: UUID) -> Response:
        return Response(RequestOutputSerializer(selectors.request_get(request_id=request_id)).data)


class RequestCreateApi(APIView):
    roles = (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT)
    errors = (NotFound, Conflict, PolicyViolation)

    class InputSerializer(JsonInputSerializer):
        holder_id = serializers.UUIDField()
        kind = serializers.ChoiceField(choices=RequestKind.choices)
        product_id = IdField()
        replaces_card_id = serializers.UUIDField(required=False)
        pool_id = IdField(required=False)
        note = serializers.CharField(max_length=500, required=False, allow_blank=True)

    @extend_schema(
        request=InputSerializer,
        responses={201: RequestOutputSerializer},
        operation_id="requests_create",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = request_create(caller=caller_of(request), **serializer.validated_data)
        return Response(RequestOutputSerializer(created).data, status=201)


class _RequestActionApi(APIView):
    """One action on one request; subclasses name the service."""

    service: Callable[..., CardRequest]
    takes_note = False

    class NoteSerializer(JsonInputSerializer):
        note = serializers.CharField(max_length=500, required=False, allow_blank=True)

    def post(self, request: Request, request_id: UUID) -> Response:
        kwargs: dict[str, Any] = {}
        if self.takes_note:
            serializer = self.NoteSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            kwargs["note"] = serializer.validated_data.get("note", "")
        done = type(self).service(request_id=request_id, caller=caller_of(request), **kwargs)
        return Response(RequestOutputSerializer(done).data)


class RequestSubmitApi(_RequestActionApi):
    roles = (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT)
    errors = (Conflict,)
    service = staticmethod(request_submit)

    @extend_schema(request=None, responses=RequestOutputSerializer, operation_id="requests_submit")
    def post(self, request: Request, request_id: UUID) -> Response:
        return super().post(request, request_id)


class RequestApproveApi(_RequestActionApi):
    """A second person approves; the requester gets 403."""

    roles = (Role.ISSUANCE_OPERATOR, Role.SECURITY_OFFICER)
    errors = (Conflict,)
    service = staticmethod(request_approve)
    takes_note = True

    @extend_schema(
        request=_RequestActionApi.NoteSerializer,
        responses=RequestOutputSerializer,
        operation_id="requests_approve",
    )
    def post(self, request: Request, request_id: UUID) -> Response:
        return super().post(request, request_id)


class RequestRejectApi(_RequestActionApi):
    roles = (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT, Role.SECURITY_OFFICER)
    errors = (Conflict,)
    service = staticmethod(request_reject)
    takes_note = True

    @extend_schema(
        request=_RequestActionApi.NoteSerializer,
        responses=RequestOutputSerializer,
        operation_id="requests_reject",
    )
    def post(self, request: Request, request_id: UUID) -> Response:
        return super().post(request, request_id)


class RequestQueueApi(_RequestActionApi):
    """Allocate a blank card from stock and queue the request for personalization."""

    roles = (Role.ISSUANCE_OPERATOR,)
    errors = (Conflict,)
    service = staticmethod(request_queue)

    @extend_schema(request=None, responses=RequestOutputSerializer, operation_id="requests_queue")
    def post(self, request: Request, request_id: UUID) -> Response:
        return super().post(request, request_id)
