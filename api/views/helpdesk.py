"""The PIN unblock helpdesk (issue 14): offline unblock responses, their rate-limit state and
history; the stations' reports of PUK unblocks and PIN try counters."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.serializers import JsonInputSerializer
from api.views.cms.common import caller_of
from api.views.dual_control import DualControlActSerializer
from cms import selectors
from cms.models import NewCodesRequest, UnblockEvent
from cms.personalization.stations import station_for_account
from cms.services.helpdesk import (
    IDENTITY_METHODS,
    PUK_OUTCOMES,
    identity_methods,
    offline_unblock_respond,
    pin_status_report,
    puk_unblock_report,
    unblock_history,
    unblock_limits,
)
from cms.services.new_codes import (
    REASONS,
    new_codes_cancel,
    new_codes_history,
    new_codes_request,
)
from core.errors import BadInput, Conflict, Forbidden, NotFound, PolicyViolation, ServiceUnavailable
from core.roles import Role

HELPDESK_READERS = (Role.HELPDESK_AGENT, Role.SECURITY_OFFICER, Role.AUDITOR)


class LimitsSerializer(serializers.Serializer[dict[str, Any]]):
    window_hours = serializers.IntegerField()
    card_limit = serializers.IntegerField()
    card_used = serializers.IntegerField()
    agent_limit = serializers.IntegerField()
    agent_used = serializers.IntegerField()
    dual_control_after = serializers.IntegerField()
    approval_needed = serializers.BooleanField()


class UnblockEventSerializer(serializers.ModelSerializer[UnblockEvent]):
    agent = serializers.CharField(source="agent.username", allow_null=True, default=None)

    class Meta:
        model = UnblockEvent
        fields = (
            "id",
            "kind",
            "agent",
            "identity_method",
            "identity_reference",
            "challenge",
            "outcome",
            "pin_tries_left",
            "puk_tries_left",
            "approval",
            "created_at",
        )


class UnblockStateApi(APIView):
    """A card's unblock state: admin key version, last known PIN/PUK tries, the rate limits as
    they stand for the caller, the identity-check methods accepted, and the history."""

    roles = HELPDESK_READERS

    class OutputSerializer(serializers.Serializer[dict[str, Any]]):
        card_id = serializers.UUIDField()
        card_number = serializers.CharField(allow_null=True)
        status = serializers.CharField()
        admin_key_version = serializers.IntegerField(allow_null=True)
        pin_tries_left = serializers.IntegerField(allow_null=True)
        puk_tries_left = serializers.IntegerField(allow_null=True)
        pin_status_at = serializers.DateTimeField(allow_null=True)
        identity_methods = serializers.DictField(child=serializers.CharField())
        limits = LimitsSerializer()
        history = UnblockEventSerializer(many=True)

    @extend_schema(responses=OutputSerializer, operation_id="helpdesk_unblock_state")
    def get(self, request: Request, card_id: UUID) -> Response:
        card = selectors.card_get(card_id=card_id)
        limits = unblock_limits(card_id=card.pk, user_id=int(request.user.pk))  # type: ignore[arg-type]
        data = {
            "card_id": card.pk,
            "card_number": card.card_number,
            "status": card.status,
            "admin_key_version": card.admin_key_version,
            "pin_tries_left": card.pin_tries_left,
            "puk_tries_left": card.puk_tries_left,
            "pin_status_at": card.pin_status_at,
            "identity_methods": identity_methods(),
            "limits": limits.as_dict(),
            "history": list(unblock_history(card_id=card.pk)[:50]),
        }
        return Response(self.OutputSerializer(data).data)


class OfflineUnblockApi(APIView):
    """Compute the response to the challenge the holder reads out (200, read it back once), or,
    beyond the dual-control threshold, ask a second agent (202 with the act; once approved, call
    again with ``approval``). The response is never stored or audited."""

    roles = (Role.HELPDESK_AGENT,)
    errors = (Forbidden, NotFound, Conflict, PolicyViolation, ServiceUnavailable)

    class InputSerializer(JsonInputSerializer):
        identity_method = serializers.ChoiceField(
            choices=sorted(IDENTITY_METHODS),
            help_text="how the holder's identity was checked (the agency accepts a subset)",
        )
        identity_reference = serializers.CharField(
            max_length=200, help_text="number called, questions asked, document type and number"
        )
        challenge = serializers.RegexField(
            r"^[\s-]*(?:[0-9A-Fa-f][\s-]*){16}$",
            max_length=64,
            help_text="the 16 hex digits the holder reads out (case, spaces and dashes ignored)",
        )
        reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
        approval = serializers.IntegerField(required=False, allow_null=True, default=None)

    class OutputSerializer(serializers.Serializer[dict[str, Any]]):
        card_id = serializers.UUIDField()
        response = serializers.CharField(allow_null=True, help_text="16 hex digits")
        display = serializers.CharField(allow_null=True, help_text="as read aloud: XXXX-XXXX-…")
        event_id = serializers.IntegerField(allow_null=True)
        limits = LimitsSerializer()
        pending_approval = DualControlActSerializer(allow_null=True)

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, 202: OutputSerializer},
        operation_id="helpdesk_offline_unblock",
    )
    def post(self, request: Request, card_id: UUID) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = offline_unblock_respond(
            card_id=card_id,
            challenge=data["challenge"],
            identity_method=data["identity_method"],
            identity_reference=data["identity_reference"],
            reason=data["reason"],
            approval_id=data["approval"],
            caller=caller_of(request),
        )
        body = {
            "card_id": result.card.pk,
            "response": result.response.hex().upper() if result.response else None,
            "display": result.display,
            "event_id": result.event.pk if result.event else None,
            "limits": result.limits.as_dict(),
            "pending_approval": result.approval,
        }
        response = Response(
            self.OutputSerializer(body).data, status=202 if result.approval else 200
        )
        response["Cache-Control"] = "no-store"
        return response


class NewCodesRequestSerializer(serializers.ModelSerializer[NewCodesRequest]):
    """A new-codes request as agents see it: never the codes, only where they went (the mailer's
    reference once queued)."""

    agent = serializers.CharField(source="agent.username")
    mailer = serializers.CharField(source="mailer.reference", allow_null=True, default=None)

    class Meta:
        model = NewCodesRequest
        fields = (
            "id",
            "card",
            "status",
            "reason",
            "agent",
            "identity_method",
            "identity_reference",
            "approval",
            "mailer",
            "pin_tries_left",
            "puk_tries_left",
            "created_at",
            "done_at",
        )


class NewCodesApi(APIView):
    """File a new-codes request for a card (forgotten or blocked PUK, mailer lost or never
    received), with the identity check: 201 queued for a station, or 202 waiting for a second
    agent (``HELPDESK_NEW_CODES_DUAL_CONTROL``; ``approval`` is the act). GET lists the card's
    requests. The codes are chosen and sealed by the server; nobody sees them but the mailer."""

    roles = (Role.HELPDESK_AGENT,)
    errors = (BadInput, Forbidden, NotFound, Conflict, ServiceUnavailable)

    class InputSerializer(JsonInputSerializer):
        reason = serializers.ChoiceField(choices=sorted(REASONS))
        identity_method = serializers.ChoiceField(
            choices=sorted(IDENTITY_METHODS),
            help_text="how the holder's identity was checked (the agency accepts a subset)",
        )
        identity_reference = serializers.CharField(
            max_length=200, help_text="number called, questions asked, document type and number"
        )
        note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(
        responses=NewCodesRequestSerializer(many=True), operation_id="helpdesk_new_codes_list"
    )
    def get(self, request: Request, card_id: UUID) -> Response:
        card = selectors.card_get(card_id=card_id)
        rows = list(new_codes_history(card_id=card.pk)[:50])
        return Response(NewCodesRequestSerializer(rows, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: NewCodesRequestSerializer, 202: NewCodesRequestSerializer},
        operation_id="helpdesk_new_codes_request",
    )
    def post(self, request: Request, card_id: UUID) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        filed = new_codes_request(
            card_id=card_id,
            reason=data["reason"],
            identity_method=data["identity_method"],
            identity_reference=data["identity_reference"],
            note=data["note"],
            caller=caller_of(request),
        )
        status = 202 if filed.status == NewCodesRequest.Status.AWAITING_APPROVAL else 201
        return Response(NewCodesRequestSerializer(filed).data, status=status)


class NewCodesCancelApi(APIView):
    """Cancel an open new-codes request (409 while a station is writing its codes)."""

    roles = (Role.HELPDESK_AGENT,)
    errors = (Forbidden, NotFound, Conflict)

    @extend_schema(
        request=None, responses=NewCodesRequestSerializer, operation_id="helpdesk_new_codes_cancel"
    )
    def post(self, request: Request, request_id: UUID) -> Response:
        cancelled = new_codes_cancel(request_id=request_id, caller=caller_of(request))
        return Response(NewCodesRequestSerializer(cancelled).data)


def _station_label(request: Request) -> str:
    return str(station_for_account(request.user).pk)  # type: ignore[arg-type]


class PukUnblockReportApi(APIView):
    """A station reports a PUK unblock it ran locally (PUK and new PIN never leave it)."""

    roles = (Role.STATION,)
    errors = (BadInput, Forbidden, NotFound, Conflict)

    class InputSerializer(JsonInputSerializer):
        card_number = serializers.RegexField(r"^8025000001\d{10}$")
        outcome = serializers.ChoiceField(choices=PUK_OUTCOMES)
        puk_tries_left = serializers.IntegerField(
            min_value=0, max_value=15, required=False, allow_null=True
        )

    @extend_schema(
        request=InputSerializer,
        responses=UnblockEventSerializer,
        operation_id="station_puk_unblock_report",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        event = puk_unblock_report(
            card_number=data["card_number"],
            outcome=data["outcome"],
            puk_tries_left=data.get("puk_tries_left"),
            caller=caller_of(request),
            station=_station_label(request),
        )
        return Response(UnblockEventSerializer(event).data)


class PinStatusReportApi(APIView):
    """A station reports the PIN and PUK try counters it read (no try consumed)."""

    roles = (Role.STATION,)
    errors = (BadInput, Forbidden, NotFound)

    class InputSerializer(JsonInputSerializer):
        card_number = serializers.RegexField(r"^8025000001\d{10}$")
        pin_tries_left = serializers.IntegerField(min_value=0, max_value=15, allow_null=True)
        puk_tries_left = serializers.IntegerField(min_value=0, max_value=15, allow_null=True)

    @extend_schema(
        request=InputSerializer,
        responses=UnblockEventSerializer,
        operation_id="station_pin_status_report",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        event = pin_status_report(
            card_number=data["card_number"],
            pin_tries_left=data["pin_tries_left"],
            puk_tries_left=data["puk_tries_left"],
            caller=caller_of(request),
            station=_station_label(request),
        )
        return Response(UnblockEventSerializer(event).data)


helpdesk_v1 = [
    path(
        "helpdesk/cards/<uuid:card_id>/unblock-state",
        UnblockStateApi.as_view(),
        name="helpdesk-unblock-state",
    ),
    path(
        "helpdesk/cards/<uuid:card_id>/offline-unblock",
        OfflineUnblockApi.as_view(),
        name="helpdesk-offline-unblock",
    ),
    path(
        "helpdesk/cards/<uuid:card_id>/new-codes",
        NewCodesApi.as_view(),
        name="helpdesk-new-codes",
    ),
    path(
        "helpdesk/new-codes/<uuid:request_id>/cancel",
        NewCodesCancelApi.as_view(),
        name="helpdesk-new-codes-cancel",
    ),
    path("station/puk-unblock", PukUnblockReportApi.as_view(), name="station-puk-unblock"),
    path("station/pin-status", PinStatusReportApi.as_view(), name="station-pin-status"),
]
