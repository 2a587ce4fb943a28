from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, User
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle
from rest_framework.views import APIView

from api.authentication import TokenAuthentication
from api.permissions import ANY_ROLE
from api.serializers import JsonInputSerializer
from core.actors import Actor
from core.errors import Forbidden, NotFound
from core.models import ApiToken
from core.signals import sign_in_audit
from core.tokens import api_token_create, api_token_list, api_token_revoke_by


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

    class OutputSerializer(serializers.Serializer[dict[str, object]]):
        token = serializers.CharField()
        prefix = serializers.CharField()
        expires_at = serializers.DateTimeField(allow_null=True)

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
        sign_in_audit(request=request, username=user.get_username(), success=True)
        token, clear = api_token_create(
            user=user, actor=Actor.for_user(user), label=serializer.validated_data.get("name", "")
        )
        return Response(
            self.OutputSerializer(
                {"token": clear, "prefix": token.prefix, "expires_at": token.expires_at}
            ).data,
            status=201,
        )

    def get_authenticate_header(self, request: Request) -> str:
        return TokenAuthentication.keyword  # what the token obtained here is presented with


def _person(request: Request) -> AbstractBaseUser:
    user = request.user
    if not isinstance(user, AbstractBaseUser):  # the role check let no anonymous caller in
        raise Forbidden("Sign in first.")
    return user


class TokenOutputSerializer(serializers.ModelSerializer[ApiToken]):
    """A token as its owner sees it: never the token itself (only its first characters)."""

    username = serializers.CharField(source="user.username")

    class Meta:
        model = ApiToken
        fields = (
            "id",
            "username",
            "prefix",
            "label",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
        )


class TokenListApi(generics.ListAPIView[ApiToken]):
    """Your API tokens, newest first (revoked and expired ones too); a security officer may ask
    for another account's with ``?username=``."""

    roles = ANY_ROLE
    errors = (Forbidden,)
    serializer_class = TokenOutputSerializer
    queryset = ApiToken.objects.none()  # the schema's model; get_queryset answers requests

    def get_queryset(self) -> QuerySet[ApiToken]:
        username = self.request.query_params.get("username") or None
        return api_token_list(caller=_person(self.request), username=username)  # type: ignore[arg-type]

    @extend_schema(
        operation_id="auth_tokens_list",
        parameters=[OpenApiParameter("username", str, description="another account (officers)")],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class TokenRevokeApi(APIView):
    """Revoke a token at once: your own, or anyone's as a security officer. Repeating it changes
    nothing; another person's token is 404 to whoever may not revoke it."""

    roles = ANY_ROLE
    errors = (NotFound,)

    @extend_schema(request=None, responses=TokenOutputSerializer, operation_id="auth_tokens_revoke")
    def post(self, request: Request, token_id: int) -> Response:
        token = api_token_revoke_by(token_id=token_id, caller=_person(request))  # type: ignore[arg-type]
        return Response(TokenOutputSerializer(token).data)
