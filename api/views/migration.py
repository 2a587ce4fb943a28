"""The CPS3 → CPS4 migration: imports, the exceptions report, waves, the dashboard.

Imports run from the command line (``manage.py import_cps3``: files of hundreds of megabytes);
the API lists them. Waves are created, planned, previewed, launched (a second person approves
through ``/api/v1/dual-control/acts``), paused, resumed and cancelled here.
"""

from __future__ import annotations

import base64
import binascii
import io

import django_filters
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpResponse
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.fields import IdField
from api.serializers import JsonInputSerializer
from api.views.dual_control import DualControlActSerializer
from cms.callers import Caller
from core.errors import BadInput, Conflict, Forbidden, NotFound, PolicyViolation
from core.roles import Role
from cps3.choices import ExceptionKind
from cps3.dashboard import dashboard
from cps3.handover import cps3_handin
from cps3.inventory import exceptions_csv
from cps3.models import Cps3Exception, Cps3Import, Wave
from cps3.waves import (
    WaveSpec,
    wave_create,
    wave_launch_request,
    wave_preview,
    wave_replan,
    wave_set_status,
)

READERS = (Role.ISSUANCE_OPERATOR, Role.SECURITY_OFFICER, Role.AUDITOR)
LEADS = (Role.ISSUANCE_OPERATOR,)


def _person(request: Request) -> AbstractBaseUser:
    user = request.user
    if not isinstance(user, AbstractBaseUser):
        raise Forbidden("Sign in first.")
    return user


class ImportSerializer(serializers.ModelSerializer[Cps3Import]):
    class Meta:
        model = Cps3Import
        fields = (
            "id",
            "filename",
            "sha256",
            "status",
            "requested_by",
            "started_at",
            "finished_at",
            "rows",
            "inserted",
            "updated",
            "unchanged",
            "rejected",
            "exceptions",
        )


class ImportListApi(generics.ListAPIView[Cps3Import]):
    """The CPS3 inventory imports, newest first."""

    roles = READERS
    serializer_class = ImportSerializer
    queryset = Cps3Import.objects.all()

    @extend_schema(operation_id="migration_imports_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)


class ExceptionSerializer(serializers.ModelSerializer[Cps3Exception]):
    reason = serializers.CharField(source="get_kind_display")

    class Meta:
        model = Cps3Exception
        fields = ("id", "kind", "reason", "line", "chip_serial", "national_id", "detail")


class ExceptionFilterSet(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=ExceptionKind.choices)
    national_id = django_filters.CharFilter()

    class Meta:
        model = Cps3Exception
        fields: list[str] = []


class ExceptionListApi(generics.ListAPIView[Cps3Exception]):
    """The reconciliation's exceptions (the last import's report), by kind, paged."""

    roles = READERS
    serializer_class = ExceptionSerializer
    filterset_class = ExceptionFilterSet
    queryset = Cps3Exception.objects.order_by("kind", "line", "id")

    @extend_schema(operation_id="migration_exceptions_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)


class ExceptionCsvApi(APIView):
    """The whole exceptions report as CSV (UTF-8, header row)."""

    roles = READERS

    @extend_schema(
        responses={(200, "text/csv"): OpenApiResponse(description="the report")},
        operation_id="migration_exceptions_csv",
    )
    def get(self, request: Request) -> HttpResponse:
        out = io.StringIO()
        exceptions_csv(out)
        response = HttpResponse(out.getvalue().encode("utf-8"), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="cps3-exceptions.csv"'
        return response


class WaveSerializer(serializers.ModelSerializer[Wave]):
    site = serializers.CharField(source="pool.code")
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    approved_by = serializers.CharField(
        source="approved_by.username", allow_null=True, default=None
    )

    class Meta:
        model = Wave
        fields = (
            "id",
            "name",
            "status",
            "professions",
            "departements",
            "expires_from",
            "expires_to",
            "site",
            "product",
            "daily_capacity",
            "start_on",
            "planned",
            "created_by",
            "approved_by",
            "created_at",
            "launched_at",
            "finished_at",
        )


class WaveListApi(generics.ListAPIView[Wave]):
    roles = READERS
    serializer_class = WaveSerializer
    queryset = Wave.objects.select_related("pool", "created_by", "approved_by")

    @extend_schema(operation_id="migration_waves_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)


class WaveCreateApi(APIView):
    """Create a wave (a draft, planned at once) from its filters and daily capacity."""

    roles = LEADS
    errors = (NotFound, Conflict)

    class InputSerializer(JsonInputSerializer):
        name = serializers.CharField(max_length=100)
        site_id = IdField()
        daily_capacity = serializers.IntegerField(min_value=1, max_value=100_000)
        start_on = serializers.DateField()
        professions = serializers.ListField(
            child=serializers.RegexField(r"^[0-9]{2}$"), required=False, max_length=30
        )
        departements = serializers.ListField(
            child=serializers.RegexField(r"^(?:[0-9]{2,3}|2[AB])$"), required=False, max_length=120
        )
        expires_from = serializers.DateField(required=False, allow_null=True)
        expires_to = serializers.DateField(required=False, allow_null=True)
        product_id = IdField(required=False, allow_null=True)

    @extend_schema(
        request=InputSerializer,
        responses={201: WaveSerializer},
        operation_id="migration_waves_create",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        wave = wave_create(
            spec=WaveSpec(
                name=v["name"],
                pool_id=v["site_id"],
                daily_capacity=v["daily_capacity"],
                start_on=v["start_on"],
                professions=tuple(v.get("professions", ())),
                departements=tuple(v.get("departements", ())),
                expires_from=v.get("expires_from"),
                expires_to=v.get("expires_to"),
                product_id=v.get("product_id"),
            ),
            user=_person(request),
        )
        return Response(WaveSerializer(wave).data, status=201)


class PreviewSerializer(serializers.Serializer[dict[str, object]]):
    wave = serializers.IntegerField()
    site = serializers.CharField()
    planned = serializers.IntegerField()
    days = serializers.ListField(child=serializers.DictField())
    departements = serializers.ListField(child=serializers.DictField())
    site_stock = serializers.IntegerField()
    site_stations = serializers.IntegerField()
    stock_short_by = serializers.IntegerField()


class WaveDetailApi(APIView):
    """A wave with its preview: counts per day and département, the site's stock and stations."""

    roles = READERS

    @extend_schema(responses=PreviewSerializer, operation_id="migration_waves_retrieve")
    def get(self, request: Request, wave_id: int) -> Response:
        return Response(wave_preview(wave_id=wave_id))


class WaveReplanApi(APIView):
    roles = LEADS
    errors = (Conflict,)

    @extend_schema(request=None, responses=WaveSerializer, operation_id="migration_waves_replan")
    def post(self, request: Request, wave_id: int) -> Response:
        return Response(WaveSerializer(wave_replan(wave_id=wave_id, user=_person(request))).data)


class WaveLaunchApi(APIView):
    """Ask a second issuance operator to launch the wave (202: the act waiting for them)."""

    roles = LEADS
    errors = (BadInput, Conflict)

    class InputSerializer(JsonInputSerializer):
        reason = serializers.CharField(max_length=2000)

    @extend_schema(
        request=InputSerializer,
        responses={202: DualControlActSerializer},
        operation_id="migration_waves_launch",
    )
    def post(self, request: Request, wave_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        act = wave_launch_request(
            wave_id=wave_id, user=_person(request), reason=data.validated_data["reason"]
        )
        return Response(DualControlActSerializer(act).data, status=202)


def _status_view(action: str) -> type[APIView]:
    class WaveStatusApi(APIView):
        roles = LEADS
        errors = (Conflict,)

        @extend_schema(
            request=None, responses=WaveSerializer, operation_id=f"migration_waves_{action}"
        )
        def post(self, request: Request, wave_id: int) -> Response:
            wave = wave_set_status(wave_id=wave_id, user=_person(request), action=action)
            return Response(WaveSerializer(wave).data)

    WaveStatusApi.__doc__ = {
        "pause": "Pause a running wave: no request is created until it resumes.",
        "resume": "Resume a paused wave.",
        "cancel": "Cancel a wave: members without a request leave it (requests made stay).",
    }[action]
    WaveStatusApi.__name__ = WaveStatusApi.__qualname__ = f"Wave{action.title()}Api"
    return WaveStatusApi


class DashboardSerializer(serializers.Serializer[dict[str, object]]):
    totals = serializers.DictField()
    waves = serializers.ListField(child=serializers.DictField())
    departements = serializers.ListField(child=serializers.DictField())
    exceptions = serializers.DictField()
    progress = serializers.ListField(child=serializers.DictField())


class DashboardApi(APIView):
    """The migration's numbers overall (``?wave=ID`` for one wave)."""

    roles = READERS

    @extend_schema(responses=DashboardSerializer, operation_id="migration_dashboard")
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("wave")
        if raw is not None and not raw.isdigit():
            raise BadInput("wave is a wave's id (a whole number).")
        return Response(dashboard(int(raw) if raw else None))


class Cps3HandinApi(APIView):
    """A station reports the CPS3 handed in at the delivery of a CPS4: matched by chip serial and
    certificates (422 and audited on a mismatch); the CPS3 is revoked at once if the CPS4 is
    active, else after its activation."""

    roles = (Role.STATION,)
    errors = (PolicyViolation,)

    class InputSerializer(JsonInputSerializer):
        cps4_card_number = serializers.RegexField(r"^[0-9]{20}$")
        chip_serial = serializers.RegexField(r"^[0-9A-Fa-f]{8,32}$")

        class Cps3HandinCertificates(JsonInputSerializer):
            auth = serializers.CharField(max_length=8192, required=False, help_text="DER, base64")
            sign = serializers.CharField(max_length=8192, required=False, help_text="DER, base64")

        certificates = Cps3HandinCertificates()

    class OutputSerializer(serializers.Serializer[dict[str, object]]):
        cps3_status = serializers.CharField()
        revoked_now = serializers.BooleanField()
        message = serializers.CharField()

    @extend_schema(
        request=InputSerializer, responses=OutputSerializer, operation_id="station_cps3_handin"
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        certificates: dict[str, bytes] = {}
        for slot, encoded in v["certificates"].items():
            try:
                certificates[slot] = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise BadInput(f"The {slot} certificate is not base64.") from None
        done = cps3_handin(
            caller=Caller.for_user(request.user),
            cps4_card_number=v["cps4_card_number"],
            chip_serial=v["chip_serial"],
            certificates=certificates,
        )
        message = (
            "CPS3 taken back and revoked."
            if done.revoked_now
            else "CPS3 taken back; it is revoked once the CPS4 is activated."
        )
        return Response(
            {"cps3_status": done.legacy.status, "revoked_now": done.revoked_now, "message": message}
        )


migration_v1 = [
    path("station/cps3-handin", Cps3HandinApi.as_view(), name="station-cps3-handin"),
    path("migration/imports", ImportListApi.as_view(), name="migration-import-list"),
    path("migration/exceptions", ExceptionListApi.as_view(), name="migration-exception-list"),
    path("migration/exceptions.csv", ExceptionCsvApi.as_view(), name="migration-exception-csv"),
    path("migration/waves", WaveListApi.as_view(), name="migration-wave-list"),
    path("migration/waves/create", WaveCreateApi.as_view(), name="migration-wave-create"),
    path("migration/waves/<int:wave_id>", WaveDetailApi.as_view(), name="migration-wave-detail"),
    path(
        "migration/waves/<int:wave_id>/replan",
        WaveReplanApi.as_view(),
        name="migration-wave-replan",
    ),
    path(
        "migration/waves/<int:wave_id>/launch",
        WaveLaunchApi.as_view(),
        name="migration-wave-launch",
    ),
    *[
        path(
            f"migration/waves/<int:wave_id>/{action}",
            _status_view(action).as_view(),
            name=f"migration-wave-{action}",
        )
        for action in ("pause", "resume", "cancel")
    ],
    path("migration/dashboard", DashboardApi.as_view(), name="migration-dashboard"),
]
