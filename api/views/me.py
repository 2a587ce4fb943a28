from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.permissions import ANY_ROLE
from core.actors import Actor
from core.roles import roles_of


class MeApi(APIView):
    """Who am I: the account behind the credential and the roles it holds."""

    roles = ANY_ROLE

    class OutputSerializer(serializers.Serializer[dict[str, object]]):
        username = serializers.CharField()
        kind = serializers.ChoiceField(choices=["user", "station"])
        full_name = serializers.CharField(allow_blank=True)
        roles = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses=OutputSerializer, operation_id="me_retrieve")
    def get(self, request: Request) -> Response:
        user = request.user
        actor = Actor.for_user(user)  # type: ignore[arg-type]
        data = {
            "username": actor.label,
            "kind": actor.kind,
            "full_name": user.get_full_name(),  # type: ignore[union-attr]
            "roles": sorted(role.value for role in roles_of(user)),
        }
        return Response(self.OutputSerializer(data).data)
