"""The PIN mailer queue and print runs: list, print, confirm, gather, reconcile.

The print endpoints are the one place a PIN leaves the server (inside the PDF, ``no-store``);
every other answer carries metadata only.
"""

from __future__ import annotations

from uuid import UUID

import django_filters
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.fields import IdField
from api.serializers import JsonInputSerializer
from api.views.cms.common import caller_of
from cms.mailers import selectors
from cms.mailers.choices import MailerStatus
from cms.mailers.services import (
    pin_mailer_confirm,
    pin_mailer_print,
    print_run_create,
    print_run_print,
    print_run_reconcile,
)
from cms.models import PinMailer, PrintRun
from core.errors import BadInput, Conflict, NotFound, PolicyViolation, ServiceUnavailable
from core.roles import Role

MAILER_READERS = (Role.ISSUANCE_OPERATOR, Role.SECURITY_OFFICER, Role.AUDITOR)
PDF_RESPONSE = {(200, "application/pdf"): bytes}


def _pdf(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def _site_code(obj: PinMailer | PrintRun) -> str | None:
    return obj.site.code if obj.site is not None else None


class PinMailerOutputSerializer(serializers.ModelSerializer[PinMailer]):
    site = serializers.SerializerMethodField()
    run = serializers.IntegerField(source="run_id", read_only=True, allow_null=True)

    class Meta:
        model = PinMailer
        fields = (
            "id",
            "reference",
            "kind",
            "status",
            "card_id",
            "request_id",
            "site",
            "run",
            "created_at",
            "print_count",
            "printed_at",
            "printed_by",
            "posted_at",
            "posted_by",
        )

    def get_site(self, obj: PinMailer) -> str | None:
        return _site_code(obj)


class PrintRunOutputSerializer(serializers.ModelSerializer[PrintRun]):
    site = serializers.SerializerMethodField()
    name = serializers.CharField(source="label", read_only=True)

    class Meta:
        model = PrintRun
        fields = (
            "id",
            "name",
            "site",
            "status",
            "mailer_count",
            "created_at",
            "created_by",
            "print_count",
            "printed_at",
            "reconciled_at",
            "reconciled_by",
            "posted_count",
            "returned_count",
        )

    def get_site(self, obj: PrintRun) -> str | None:
        return _site_code(obj)


class PinMailerFilterSet(django_filters.FilterSet):
    """``status`` (repeatable); without it, the letters not posted yet."""

    status = django_filters.MultipleChoiceFilter(choices=MailerStatus.choices)
    site = django_filters.CharFilter(field_name="site__code")
    reference = django_filters.CharFilter()

    class Meta:
        model = PinMailer
        fields: list[str] = []


class PinMailerListApi(generics.ListAPIView[PinMailer]):
    """The print queue, oldest first, paged: by default the letters not posted yet (metadata
    only, never a code)."""

    roles = MAILER_READERS
    serializer_class = PinMailerOutputSerializer
    filterset_class = PinMailerFilterSet

    def get_queryset(self):  # type: ignore[no-untyped-def]
        if self.request.query_params.getlist("status"):
            return selectors.pin_mailer_list(statuses=tuple(MailerStatus.values))
        return selectors.pin_mailer_list()

    @extend_schema(operation_id="pin_mailers_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)


class PinMailerPrintApi(APIView):
    """One queued letter as a PDF; it may be printed again until confirmed (the codes stay
    sealed until then, so a lost response loses nothing)."""

    roles = (Role.ISSUANCE_OPERATOR,)
    errors = (Conflict, ServiceUnavailable)

    @extend_schema(request=None, responses=PDF_RESPONSE, operation_id="pin_mailers_print")
    def post(self, request: Request, mailer_id: UUID) -> HttpResponse:
        pdf = pin_mailer_print(mailer_id=mailer_id, caller=caller_of(request))
        return _pdf(pdf, f"pin-mailer-{mailer_id}.pdf")


class PinMailerConfirmApi(APIView):
    """The printed letter is in its envelope: its sealed codes are deleted."""

    roles = (Role.ISSUANCE_OPERATOR,)
    errors = (Conflict,)

    @extend_schema(
        request=None, responses=PinMailerOutputSerializer, operation_id="pin_mailers_confirm"
    )
    def post(self, request: Request, mailer_id: UUID) -> Response:
        mailer = pin_mailer_confirm(mailer_id=mailer_id, caller=caller_of(request))
        return Response(PinMailerOutputSerializer(mailer).data)


class PrintRunListApi(generics.ListAPIView[PrintRun]):
    roles = MAILER_READERS
    serializer_class = PrintRunOutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.print_run_list()

    @extend_schema(operation_id="print_runs_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)


class PrintRunDetailApi(APIView):
    roles = MAILER_READERS

    @extend_schema(responses=PrintRunOutputSerializer, operation_id="print_runs_retrieve")
    def get(self, request: Request, run_id: int) -> Response:
        return Response(PrintRunOutputSerializer(selectors.print_run_get(run_id=run_id)).data)


class PrintRunCreateApi(APIView):
    """Gather a site's queued letters into a print run (``site_id`` null: letters of no site)."""

    roles = (Role.ISSUANCE_OPERATOR,)
    errors = (NotFound, Conflict)

    class InputSerializer(JsonInputSerializer):
        site_id = IdField(allow_null=True)

    @extend_schema(
        request=InputSerializer,
        responses={201: PrintRunOutputSerializer},
        operation_id="print_runs_create",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = print_run_create(
            site_id=serializer.validated_data["site_id"], caller=caller_of(request)
        )
        return Response(PrintRunOutputSerializer(run).data, status=201)


class PrintRunPrintApi(APIView):
    """The run as one PDF for the print shop, each page with its reference's Code 128; again
    as often as needed until the run is reconciled."""

    roles = (Role.ISSUANCE_OPERATOR,)
    errors = (Conflict, ServiceUnavailable)

    @extend_schema(request=None, responses=PDF_RESPONSE, operation_id="print_runs_print")
    def post(self, request: Request, run_id: int) -> HttpResponse:
        pdf = print_run_print(run_id=run_id, caller=caller_of(request))
        return _pdf(pdf, f"print-run-{run_id}.pdf")


class PrintRunReconcileApi(APIView):
    """Close a printed run with the references scanned or typed from the enveloped letters:
    those are posted (codes deleted), the others go back to the queue."""

    roles = (Role.ISSUANCE_OPERATOR,)
    errors = (BadInput, Conflict, PolicyViolation)

    class InputSerializer(JsonInputSerializer):
        references = serializers.ListField(
            child=serializers.CharField(max_length=40), allow_empty=True, max_length=10_000
        )

    @extend_schema(
        request=InputSerializer,
        responses=PrintRunOutputSerializer,
        operation_id="print_runs_reconcile",
    )
    def post(self, request: Request, run_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = print_run_reconcile(
            run_id=run_id,
            references=serializer.validated_data["references"],
            caller=caller_of(request),
        )
        return Response(PrintRunOutputSerializer(run).data)
