"""Stations (security officers), station enrollment (one-time code), the station relay
(claim, exchange, heartbeat) and the PIN mailer print queue."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from api.serializers import JsonInputSerializer
from api.views.cms.common import caller_of
from api.views.station_protocol import (
    CLAIM_ANSWER,
    SESSION_ANSWER,
    StationClaimSerializer,
    StationExchangeSerializer,
    StationHeartbeatSerializer,
    card_identity,
)
from cards.station_protocol import Heartbeat, SessionAnswer
from cms.models import PersonalizationJob, Station
from cms.personalization.claims import station_claim
from cms.personalization.codes import codes_exchange_for_account, is_codes_session
from cms.personalization.jobs import job_abandon, job_heartbeat
from cms.personalization.renewal import renewal_claim, renewal_exchange
from cms.personalization.session import session_exchange_for_account
from cms.personalization.stations import (
    EnrollmentCode,
    station_code_renew,
    station_create,
    station_disable,
    station_enroll,
    station_for_account,
    station_list,
    station_touch,
)
from core.errors import Conflict, Forbidden, NotFound, PolicyViolation, ServiceUnavailable
from core.roles import Role


class StationOutputSerializer(serializers.ModelSerializer[Station]):
    site = serializers.CharField(source="site.code")

    class Meta:
        model = Station
        fields = (
            "id",
            "name",
            "site",
            "status",
            "certificate_serial",
            "created_at",
            "enrolled_at",
            "disabled_at",
            "last_seen_at",
        )


class EnrollmentCodeOutputSerializer(serializers.Serializer[EnrollmentCode]):
    station = StationOutputSerializer()
    enrollment_code = serializers.CharField(source="code")
    expires_at = serializers.DateTimeField()
    approval_id = serializers.IntegerField(
        allow_null=True,
        help_text="the dual-control act a second security officer approves before the code works",
    )


class StationListApi(APIView):
    roles = (Role.SECURITY_OFFICER, Role.AUDITOR)

    @extend_schema(responses=StationOutputSerializer(many=True), operation_id="stations_list")
    def get(self, request: Request) -> Response:
        stations = station_list()
        return Response(StationOutputSerializer(stations, many=True).data)


class StationCreateApi(APIView):
    """A new station at a site; its one-time enrollment code is in this response only."""

    roles = (Role.SECURITY_OFFICER,)
    errors = (NotFound, Conflict)

    class InputSerializer(JsonInputSerializer):
        site = serializers.SlugField(max_length=32)
        name = serializers.CharField(max_length=64)

    @extend_schema(
        request=InputSerializer,
        responses={201: EnrollmentCodeOutputSerializer},
        operation_id="stations_create",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = station_create(
            site_code=serializer.validated_data["site"],
            name=serializer.validated_data["name"],
            caller=caller_of(request),
        )
        return Response(EnrollmentCodeOutputSerializer(issued).data, status=201)


class StationCodeRenewApi(APIView):
    roles = (Role.SECURITY_OFFICER,)
    errors = (Conflict,)

    @extend_schema(
        request=None,
        responses={201: EnrollmentCodeOutputSerializer},
        operation_id="stations_enrollment_code",
    )
    def post(self, request: Request, station_id: UUID) -> Response:
        issued = station_code_renew(station_id=station_id, caller=caller_of(request))
        return Response(EnrollmentCodeOutputSerializer(issued).data, status=201)


class StationDisableApi(APIView):
    roles = (Role.SECURITY_OFFICER,)
    errors = (ServiceUnavailable,)

    class InputSerializer(JsonInputSerializer):
        note = serializers.CharField(max_length=200, required=False, allow_blank=True)

    @extend_schema(
        request=InputSerializer, responses=StationOutputSerializer, operation_id="stations_disable"
    )
    def post(self, request: Request, station_id: UUID) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        station = station_disable(
            station_id=station_id,
            caller=caller_of(request),
            note=serializer.validated_data.get("note", ""),
        )
        return Response(StationOutputSerializer(station).data)


class EnrollThrottle(AnonRateThrottle):
    rate = "20/min"


class StationEnrollApi(APIView):
    """Exchange a one-time enrollment code for the station's credential (token, and a client
    certificate when a CSR is sent). The code is the credential of this call."""

    public = True
    permission_classes = (AllowAny,)
    authentication_classes = ()
    throttle_classes = (EnrollThrottle,)
    errors = (Forbidden, Conflict, PolicyViolation, ServiceUnavailable)

    class InputSerializer(JsonInputSerializer):
        code = serializers.CharField(max_length=64)
        csr = serializers.CharField(max_length=8000, required=False)

    class OutputSerializer(serializers.Serializer[dict[str, Any]]):
        station = StationOutputSerializer()
        token = serializers.CharField()
        certificate = serializers.CharField(allow_null=True)

    @extend_schema(
        request=InputSerializer, responses={201: OutputSerializer}, operation_id="stations_enroll"
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        csr = serializer.validated_data.get("csr")
        done = station_enroll(
            code=serializer.validated_data["code"], csr_pem=csr.encode() if csr else None
        )
        body = {"station": done.station, "token": done.token, "certificate": done.certificate_pem}
        return Response(self.OutputSerializer(body).data, status=201)


class StationNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, with the answer to what stations send (``Accept: application/json``,
    or none: ``*/*``) given without parsing the header on each of a card's nine round trips;
    any other header or a ``format`` override is negotiated as ever."""

    PLAIN = frozenset(("application/json", "*/*"))

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        if (
            not format_suffix
            and isinstance(renderers, list)
            and renderers
            and renderers[0].media_type == "application/json"
            # request.META, not request.headers and query_params: each builds a mapping of
            # every header or parameter on first use, only to read one here
            and request.META.get("HTTP_ACCEPT", "*/*") in self.PLAIN
            and (
                not request.META.get("QUERY_STRING")
                or not request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
            )
        ):
            return renderers[0], "application/json"  # what DRF answers to either header
        chosen: tuple[BaseRenderer, str] = super().select_renderer(
            request, renderers, format_suffix
        )
        return chosen


class StationClaimApi(APIView):
    """Claim the job of the inserted card (or, without a card, learn which card to insert);
    the answer carries the first APDU batch. 204: nothing to do."""

    roles = (Role.STATION,)
    content_negotiation_class = StationNegotiation
    errors = (NotFound, Conflict, PolicyViolation, ServiceUnavailable)

    @extend_schema(
        request=StationClaimSerializer,
        responses={200: CLAIM_ANSWER, 204: None},
        operation_id="station_claim",
    )
    def post(self, request: Request) -> Response:
        serializer = StationClaimSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        station = station_for_account(request.user)  # type: ignore[arg-type]
        station_touch(station)
        payload = station_claim(station=station, identity=card_identity(serializer.validated_data))
        if payload is None:
            return Response(status=204)
        return Response(payload)


class StationExchangeApi(APIView):
    """The card's responses to batch ``seq``; the answer is the next batch or the outcome."""

    roles = (Role.STATION,)
    content_negotiation_class = StationNegotiation
    errors = (Conflict, PolicyViolation, ServiceUnavailable)

    @extend_schema(
        request=StationExchangeSerializer,
        responses={200: SESSION_ANSWER},
        operation_id="station_exchange",
    )
    def post(self, request: Request, session_id: UUID) -> Response:
        serializer = StationExchangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return Response(
            station_exchange(
                session_id,
                request.user,  # type: ignore[arg-type]
                seq=data["seq"],
                responses=data.get("responses"),
                error=data.get("error"),
            )
        )


def station_exchange(
    session_id: UUID,
    account: User,
    *,
    seq: int,
    responses: list[str] | None,
    error: str | None,
) -> SessionAnswer:
    """The answer to a validated exchange request: the view's, and api.station_front's for the
    usual request, which it answers before Django's handler."""
    exchange: dict[str, Any] = {
        "session_id": session_id,
        "account": account,
        "seq": seq,
        "responses": responses,
        "error": error,
    }
    try:
        payload = session_exchange_for_account(**exchange)
    except NotFound:
        if not is_codes_session(session_id):
            raise
        # A new-codes session: the same relay carrying its own program.
        payload = codes_exchange_for_account(**exchange)
    return payload


class StationRenewalClaimSerializer(JsonInputSerializer):
    """The inserted card's chip serial (EF.SN.ICC, 10 bytes in hex)."""

    chip_serial = serializers.RegexField(r"^[0-9A-Fa-f]{20}$")


class StationRenewalClaimApi(APIView):
    """Renew the certificates of the inserted card (an ACTIVE CPS4 with an open renewal
    invitation, or an interrupted renewal to resume); the answer carries the first APDU batch.
    204: nothing to renew. Batches may hold steps with ``holder_pin``: the station fills in the
    PIN the holder types there; it never comes to the server."""

    roles = (Role.STATION,)
    content_negotiation_class = StationNegotiation
    errors = (NotFound, Conflict, PolicyViolation, ServiceUnavailable)

    @extend_schema(
        request=StationRenewalClaimSerializer,
        responses={200: SESSION_ANSWER, 204: None},
        operation_id="station_renewal_claim",
    )
    def post(self, request: Request) -> Response:
        serializer = StationRenewalClaimSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payload = renewal_claim(
            account=request.user,  # type: ignore[arg-type]
            chip_serial=serializer.validated_data["chip_serial"],
        )
        if payload is None:
            return Response(status=204)
        return Response(payload)


class StationRenewalExchangeApi(APIView):
    """The card's responses to batch ``seq`` of a renewal; the next batch or the outcome."""

    roles = (Role.STATION,)
    content_negotiation_class = StationNegotiation
    errors = (NotFound, Conflict, PolicyViolation, ServiceUnavailable)

    @extend_schema(
        request=StationExchangeSerializer,
        responses={200: SESSION_ANSWER},
        operation_id="station_renewal_exchange",
    )
    def post(self, request: Request, renewal_id: UUID) -> Response:
        serializer = StationExchangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        payload = renewal_exchange(
            renewal_id=renewal_id,
            account=request.user,  # type: ignore[arg-type]
            seq=data["seq"],
            responses=data.get("responses"),
            error=data.get("error"),
        )
        return Response(payload)


class StationHeartbeatApi(APIView):
    """Renew the lease of a job the station holds (409 once it lost it)."""

    roles = (Role.STATION,)
    content_negotiation_class = StationNegotiation
    errors = (Conflict,)

    @extend_schema(
        request=None,
        responses={200: StationHeartbeatSerializer},
        operation_id="station_heartbeat",
    )
    def post(self, request: Request, job_id: UUID) -> Response:
        station = station_for_account(request.user)  # type: ignore[arg-type]
        station_touch(station)
        job = job_heartbeat(job_id=job_id, station=station)
        assert job.lease_expires_at is not None
        body: Heartbeat = {"job": str(job.pk), "lease_expires_at": job.lease_expires_at.isoformat()}
        return Response(body)


class JobOutputSerializer(serializers.ModelSerializer[PersonalizationJob]):
    class Meta:
        model = PersonalizationJob
        fields = (
            "id",
            "request",
            "card",
            "pool",
            "status",
            "station",
            "lease_expires_at",
            "attempts",
            "created_at",
            "updated_at",
        )


class JobAbandonApi(APIView):
    """Give up an interrupted personalization whose card will not come back (lost, broken): the
    request fails with the card spoiled (certificates revoked) and is queued again with another
    card. Abandoning a closed job again changes nothing."""

    roles = (Role.ISSUANCE_OPERATOR, Role.SECURITY_OFFICER)
    errors = (Conflict, ServiceUnavailable)

    class InputSerializer(JsonInputSerializer):
        note = serializers.CharField(max_length=200, required=False, allow_blank=True)

    @extend_schema(
        request=InputSerializer, responses=JobOutputSerializer, operation_id="stations_job_abandon"
    )
    def post(self, request: Request, job_id: UUID) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = job_abandon(
            job_id=job_id,
            caller=caller_of(request),
            note=serializer.validated_data.get("note", ""),
        )
        return Response(JobOutputSerializer(job).data)


stations_v1 = [
    path("stations", StationListApi.as_view(), name="station-list"),
    path("stations/create", StationCreateApi.as_view(), name="station-create"),
    path("stations/enroll", StationEnrollApi.as_view(), name="station-enroll"),
    path(
        "stations/<uuid:station_id>/enrollment-code",
        StationCodeRenewApi.as_view(),
        name="station-enrollment-code",
    ),
    path("stations/<uuid:station_id>/disable", StationDisableApi.as_view(), name="station-disable"),
    path(
        "stations/jobs/<uuid:job_id>/abandon", JobAbandonApi.as_view(), name="station-job-abandon"
    ),
    path("station/claim", StationClaimApi.as_view(), name="station-claim"),
    path(
        "station/sessions/<uuid:session_id>/exchange",
        StationExchangeApi.as_view(),
        name="station-exchange",
    ),
    path("station/renewals", StationRenewalClaimApi.as_view(), name="station-renewal-claim"),
    path(
        "station/renewals/<uuid:renewal_id>/exchange",
        StationRenewalExchangeApi.as_view(),
        name="station-renewal-exchange",
    ),
    path(
        "station/jobs/<uuid:job_id>/heartbeat",
        StationHeartbeatApi.as_view(),
        name="station-heartbeat",
    ),
]
