from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle
from rest_framework.views import APIView

from api.authentication import TokenAuthentication
from api.serializers import JsonInputSerializer
from core.actors import Actor
from core.tokens import api_token_create


class LoginThrottle(AnonRateThrottle):
    """Attempts per client address."""

    rate = "20/min"


class LoginUsernameThrottle(SimpleRateThrottle):
    """Attempts per account, whatever address they come from: guessing one password is slow."""

    scope = "login_username"
    rate = "10/min"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        data = request.data  # may be any JSON value: the serializer, not the throttle, refuses it
        username = data.get("username") if isinstance(data, Mapping) else None
        if not isinstance(username, str) or not username:
            return None
        # A digest: any user name makes a well-formed cache key.
        ident = hashlib.sha256(username.strip().lower().encode("utf-8")).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": ident}


class TokenCreateApi(APIView):
    """Exchange a username and password for a new API token, shown in this response only."""

    public = True  # reachable without a role: this is how a caller gets one
    permission_classes = (AllowAny,)
    authentication_classes = ()
    throttle_classes = (LoginThrottle, LoginUsernameThrottle)
    errors = (exceptions.AuthenticationFailed,)

    class InputSerializer(JsonInputSerializer, AuthTokenSerializer):
        name = serializers.CharField(required=False, allow_blank=True, max_length=100)

    class OutputSerializer(serializers.Serializer[dict[str, str]]):
        token = serializers.CharField()
        prefix = serializers.CharField()

    @extend_schema(
        request=InputSerializer, responses={201: OutputSerializer}, operation_id="auth_token_create"
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.InputSerializer(data=request.data, context={"request": request})
        if not serializer.is_valid():
            refusals = serializer.errors.get("non_field_errors", [])
            if any(getattr(refusal, "code", None) == "authorization" for refusal in refusals):
                # Well-formed, wrong credentials: a 401, not a malformed request.
                raise exceptions.AuthenticationFailed("Unknown username or wrong password.")
            raise exceptions.ValidationError(serializer.errors)
        user: User = serializer.validated_data["user"]
        token, clear = api_token_create(
            user=user, actor=Actor.for_user(user), label=serializer.validated_data.get("name", "")
        )
        return Response(
            self.OutputSerializer({"token": clear, "prefix": token.prefix}).data, status=201
        )

    def get_authenticate_header(self, request: Request) -> str:
        return TokenAuthentication.keyword  # what the token obtained here is presented with
