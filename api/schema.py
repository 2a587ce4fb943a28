"""OpenAPI generation: unique component names for the views' nested serializers, and the token
authentication scheme."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        name: str = super().get_serializer_name(serializer, direction)
        qualname = type(serializer).__qualname__
        if "." not in qualname:
            return name
        # CardRevokeApi.InputSerializer -> CardRevokeInput: every view nests its own
        # InputSerializer/OutputSerializer, which would otherwise collide in one component.
        owner, _, inner = qualname.rpartition(".")
        owner = owner.split(".")[-1].removesuffix("Api")
        return f"{owner}{inner.removesuffix('Serializer')}"


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "api.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <token>`, from POST /api/v1/auth/token",
        }
