"""Relying parties (security officers; auditors read): registration, withdrawal, the export of
the DESFire read key under dual control, and the published deny lists."""

from __future__ import annotations

import base64
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.serializers import JsonInputSerializer
from api.views.dual_control import DualControlActSerializer
from cms.contactless.relying_parties import (
    EXPORT_ACT,
    relying_party_register,
    relying_party_withdraw,
)
from cms.models import DenyListPublication, RelyingParty, RelyingPartyKeyExport
from core.actors import Actor
from core.dual_control import act_request
from core.errors import Conflict, Forbidden, NotFound
from core.roles import Role

READERS = (Role.SECURITY_OFFICER, Role.AUDITOR)


def _person(request: Request) -> AbstractBaseUser:
    user = request.user
    if not isinstance(user, AbstractBaseUser):
        raise Forbidden("Sign in first.")
    return user


class RelyingPartySerializer(serializers.ModelSerializer[RelyingParty]):
    class Meta:
        model = RelyingParty
        fields = ("id", "name", "contact", "public_key_pem", "active", "created_at", "withdrawn_at")


class RelyingPartyListApi(generics.ListAPIView[RelyingParty]):
    """Registered relying parties."""

    roles = READERS
    serializer_class = RelyingPartySerializer
    queryset = RelyingParty.objects.order_by("name")

    @extend_schema(operation_id="relying_parties_list")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class RelyingPartyCreateApi(APIView):
    """Register a relying party with the RSA public key its read key will be wrapped to."""

    roles = (Role.SECURITY_OFFICER,)
    errors = (Conflict,)

    class InputSerializer(JsonInputSerializer):
        name = serializers.CharField(max_length=100)
        contact = serializers.CharField(max_length=200, required=False, allow_blank=True)
        public_key_pem = serializers.CharField(max_length=4000)

    @extend_schema(
        request=InputSerializer,
        responses={201: RelyingPartySerializer},
        operation_id="relying_parties_create",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        party = relying_party_register(
            name=data["name"],
            public_key_pem=data["public_key_pem"],
            contact=data.get("contact", ""),
            actor=Actor.for_user(_person(request)),
        )
        return Response(RelyingPartySerializer(party).data, status=201)


class RelyingPartyWithdrawApi(APIView):
    """Withdraw a relying party: its key exports are refused from now on."""

    roles = (Role.SECURITY_OFFICER,)
    errors = (NotFound,)

    @extend_schema(
        request=None, responses=RelyingPartySerializer, operation_id="relying_parties_withdraw"
    )
    def post(self, request: Request, party_id: int) -> Response:
        party = relying_party_withdraw(
            relying_party_id=party_id, actor=Actor.for_user(_person(request))
        )
        return Response(RelyingPartySerializer(party).data)


class RelyingPartyKeyExportRequestApi(APIView):
    """Ask for the export of the DESFire read key (key 1) to this relying party; a second
    security officer approves it at /api/v1/dual-control/acts (202: the pending act)."""

    roles = (Role.SECURITY_OFFICER,)
    errors = (NotFound, Conflict)

    class InputSerializer(JsonInputSerializer):
        reason = serializers.CharField(max_length=500)

    @extend_schema(
        request=InputSerializer,
        responses={202: DualControlActSerializer},
        operation_id="relying_parties_key_export_request",
    )
    def post(self, request: Request, party_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        act = act_request(
            kind=EXPORT_ACT,
            params={"relying_party_id": party_id},
            user=_person(request),
            reason=serializer.validated_data["reason"],
        )
        return Response(DualControlActSerializer(act).data, status=202)


class KeyExportSerializer(serializers.ModelSerializer[RelyingPartyKeyExport]):
    wrapped = serializers.SerializerMethodField(help_text="RSA-OAEP (SHA-256), base64")

    class Meta:
        model = RelyingPartyKeyExport
        fields = ("id", "key_label", "key_check_value", "act_id", "created_at", "wrapped")

    def get_wrapped(self, obj: RelyingPartyKeyExport) -> str:
        return base64.b64encode(bytes(obj.wrapped)).decode()


class RelyingPartyKeyExportApi(APIView):
    """An approved export: the read master encrypted to the relying party's public key (only
    its private key opens it). Refused once the relying party is withdrawn."""

    roles = (Role.SECURITY_OFFICER,)
    errors = (NotFound, Conflict)

    @extend_schema(responses=KeyExportSerializer, operation_id="relying_parties_key_export_get")
    def get(self, request: Request, party_id: int, export_id: int) -> Response:
        export = (
            RelyingPartyKeyExport.objects.select_related("relying_party")
            .filter(pk=export_id, relying_party_id=party_id)
            .first()
        )
        if export is None:
            raise NotFound(f"no export #{export_id} for relying party #{party_id}")
        if not export.relying_party.active:
            raise Conflict("this relying party was withdrawn: its exports are refused")
        return Response(KeyExportSerializer(export).data)


class DenyListPublicationSerializer(serializers.ModelSerializer[DenyListPublication]):
    class Meta:
        model = DenyListPublication
        fields = (
            "version",
            "kind",
            "base_version",
            "issued_at",
            "next_update",
            "entry_count",
            "sha256",
        )


class DenyListPublicationListApi(generics.ListAPIView[DenyListPublication]):
    """Published signed deny lists, newest first (the documents are at /contactless/deny-list/)."""

    roles = (Role.SECURITY_OFFICER, Role.HELPDESK_AGENT, Role.AUDITOR)
    serializer_class = DenyListPublicationSerializer
    queryset = DenyListPublication.objects.order_by("-version", "kind")

    @extend_schema(operation_id="contactless_deny_list_publications")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


relying_parties_v1 = [
    path("relying-parties", RelyingPartyListApi.as_view(), name="relying-party-list"),
    path("relying-parties/create", RelyingPartyCreateApi.as_view(), name="relying-party-create"),
    path(
        "relying-parties/<int:party_id>/withdraw",
        RelyingPartyWithdrawApi.as_view(),
        name="relying-party-withdraw",
    ),
    path(
        "relying-parties/<int:party_id>/key-export",
        RelyingPartyKeyExportRequestApi.as_view(),
        name="relying-party-key-export",
    ),
    path(
        "relying-parties/<int:party_id>/key-exports/<int:export_id>",
        RelyingPartyKeyExportApi.as_view(),
        name="relying-party-key-export-get",
    ),
    path(
        "contactless/deny-list/publications",
        DenyListPublicationListApi.as_view(),
        name="contactless-deny-list-publications",
    ),
]

__all__ = ["relying_parties_v1"]
