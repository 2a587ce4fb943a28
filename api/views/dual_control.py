"""Dual-control acts: the second person's queue, approve, refuse; the requester's withdrawal.

Each feature asks for its own acts through its own endpoint (which answers 202 with the act);
these endpoints decide them.
"""

from __future__ import annotations

import django_filters
from django.contrib.auth.models import AbstractBaseUser
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.serializers import JsonInputSerializer
from core.dual_control import act_approve, act_cancel, act_list, act_refuse
from core.errors import BadInput, Conflict, Forbidden, NotFound
from core.models import DualControlAct
from core.roles import Role


def _person(request: Request) -> AbstractBaseUser:
    user = request.user
    if not isinstance(user, AbstractBaseUser):  # the role check let no anonymous caller in
        raise Forbidden("Sign in first.")
    return user


PERSON_ROLES = (Role.ISSUANCE_OPERATOR, Role.HELPDESK_AGENT, Role.SECURITY_OFFICER)


class DualControlActSerializer(serializers.ModelSerializer[DualControlAct]):
    requested_by = serializers.CharField(source="requested_by.username")
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)

    class Meta:
        model = DualControlAct
        fields = (
            "id",
            "kind",
            "summary",
            "reason",
            "params",
            "status",
            "requested_by",
            "requested_at",
            "expires_at",
            "decided_by",
            "decided_at",
            "decision_note",
            "result",
        )


class DualControlActFilterSet(django_filters.FilterSet):
    """``status`` (default ``pending``) and ``kind``."""

    status = django_filters.ChoiceFilter(choices=DualControlAct.Status.choices)
    kind = django_filters.CharFilter()

    class Meta:
        model = DualControlAct
        fields: list[str] = []


class DualControlActListApi(generics.ListAPIView[DualControlAct]):
    """Acts of the kinds your roles may decide; by default the pending ones, newest first."""

    roles = PERSON_ROLES
    serializer_class = DualControlActSerializer
    queryset = DualControlAct.objects.none()  # the schema's model; get_queryset answers requests
    filterset_class = DualControlActFilterSet

    def get_queryset(self):  # type: ignore[no-untyped-def]
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return DualControlAct.objects.none()
        status = None if self.request.query_params.get("status") else "pending"
        return act_list(user=_person(self.request), status=status)

    @extend_schema(operation_id="dual_control_acts_list")
    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().get(request, *args, **kwargs)


class _NoteInput(JsonInputSerializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class DualControlActApproveApi(APIView):
    """A second person approves the act: it is carried out now."""

    roles = PERSON_ROLES
    errors = (BadInput, Forbidden, NotFound, Conflict)

    @extend_schema(
        request=_NoteInput,
        responses=DualControlActSerializer,
        operation_id="dual_control_acts_approve",
    )
    def post(self, request: Request, act_id: int) -> Response:
        data = _NoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        act = act_approve(act_id=act_id, user=_person(request), note=data.validated_data["note"])
        return Response(DualControlActSerializer(act).data)


class DualControlActRefuseApi(APIView):
    """A second person refuses the act (a note is required): nothing is carried out."""

    roles = PERSON_ROLES
    errors = (BadInput, Forbidden, NotFound, Conflict)

    @extend_schema(
        request=_NoteInput,
        responses=DualControlActSerializer,
        operation_id="dual_control_acts_refuse",
    )
    def post(self, request: Request, act_id: int) -> Response:
        data = _NoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        act = act_refuse(act_id=act_id, user=_person(request), note=data.validated_data["note"])
        return Response(DualControlActSerializer(act).data)


class DualControlActCancelApi(APIView):
    """The requester withdraws a pending act."""

    roles = PERSON_ROLES
    errors = (Forbidden, NotFound, Conflict)

    @extend_schema(
        request=None, responses=DualControlActSerializer, operation_id="dual_control_acts_cancel"
    )
    def post(self, request: Request, act_id: int) -> Response:
        act = act_cancel(act_id=act_id, user=_person(request))
        return Response(DualControlActSerializer(act).data)


dual_control_v1 = [
    path("dual-control/acts", DualControlActListApi.as_view(), name="dual-control-act-list"),
    path(
        "dual-control/acts/<int:act_id>/approve",
        DualControlActApproveApi.as_view(),
        name="dual-control-act-approve",
    ),
    path(
        "dual-control/acts/<int:act_id>/refuse",
        DualControlActRefuseApi.as_view(),
        name="dual-control-act-refuse",
    ),
    path(
        "dual-control/acts/<int:act_id>/cancel",
        DualControlActCancelApi.as_view(),
        name="dual-control-act-cancel",
    ),
]
