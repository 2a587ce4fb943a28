"""OpenAPI generation: unique component names for the views' nested serializers, the token
authentication scheme, and the contract each operation keeps with its callers.

The contract is derived here, once, from what the views declare:

- every error status an operation can answer, with the ``{"message", "extra"}`` envelope as its
  body: 401 and 403 unless the view is ``public``; 404 when the path names an object or the list
  is paginated (a page past the last); 400 when there is a query string or a body to check; 413
  and 415 for bodies; 429 when the view is throttled; and the ``ApplicationError`` classes the
  view lists in ``errors`` (the refusals of the services it calls: 404, 409, 422, 503...);
- the text a ``CharField`` really accepts (trimmed, non-blank unless allowed, no NUL character),
  so that a request the schema calls valid is not refused, nor an invalid one accepted.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers

from core.errors import ApplicationError

# One line per status: what it means for any operation that documents it.
ERROR_DESCRIPTIONS = {
    400: "The request is not valid: `message` says why, `extra.fields` names the fields.",
    401: "No credential, or an unknown or revoked token.",
    403: "The account does not hold a role allowed to call this, or the action is refused to it.",
    404: "No such object, or no such page.",
    409: "The object's current state does not allow this (a conflict); re-read it.",
    413: "The request body is over the size limit.",
    415: "The request body's media type is not one the operation accepts.",
    422: "A policy refuses this well-formed request.",
    429: "Too many attempts; retry after `Retry-After` seconds.",
    503: "A dependency (key backend, HSM) is unavailable; retrying later may succeed.",
}
_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "description": "The scheme to authenticate with: `Token`.",
            "required": True,
        }
    },
    429: {
        "Retry-After": {
            "schema": {"type": "integer"},
            "description": "Seconds to wait before the next attempt.",
            "required": True,
        }
    },
}
# DRF trims text and refuses NUL; PostgreSQL could not store it anyway.
_CORE_END = r"[^\s\x00]"
_BLANK = {"type": "string", "maxLength": 0}
_ANY = r"[^\x00]"


class ErrorSerializer(serializers.Serializer[dict[str, Any]]):
    """The one error envelope (``api.exceptions``)."""

    message = serializers.CharField(help_text="What was wrong and what to do.")
    extra = serializers.DictField(help_text="Details: `fields` for invalid input, and the like.")


def text_pattern(*, min_length: int, max_length: int | None, trimmed: bool) -> str:
    """The strings a DRF ``CharField`` accepts: no NUL and, once trimmed if it trims, from
    ``min_length`` to ``max_length`` characters (a JSON Schema pattern, anchored)."""
    upper = "" if max_length is None else str(max_length)
    if not trimmed:
        return rf"^{_ANY}{{{min_length},{upper}}}$"
    if max_length == 0:
        return r"^\s*$"
    if max_length == 1:
        core = _CORE_END
    else:
        # First and last characters are not spaces; the middle is anything but NUL.
        inner_max = "" if max_length is None else str(max_length - 2)
        inner_min = max(min_length - 2, 0)
        middle = f"{_ANY}{{{inner_min},{inner_max}}}{_CORE_END}"
        core = f"{_CORE_END}{middle}" if min_length >= 2 else f"{_CORE_END}(?:{middle})?"
    if min_length == 0:
        core = f"(?:{core})?"
    return rf"^\s*{core}\s*$"


def _is_plain_text(field: Any) -> bool:
    """A ``CharField`` whose only rules are length and blankness (not a slug, e-mail, regex...)."""
    return type(field) is serializers.CharField or (
        isinstance(field, serializers.CharField)
        and not isinstance(
            field,
            serializers.EmailField
            | serializers.RegexField
            | serializers.URLField
            | serializers.IPAddressField,
        )
    )


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

    _mapping_request = False

    def _map_basic_serializer(self, serializer: Any, direction: Any) -> dict[str, Any]:
        outer, self._mapping_request = self._mapping_request, direction == "request"
        try:
            schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)  # type: ignore[no-untyped-call]
        finally:
            self._mapping_request = outer
        exactly_one_of: tuple[str, ...] = getattr(serializer, "exactly_one_of", ())
        if exactly_one_of and direction == "request":
            schema["oneOf"] = [{"required": [name]} for name in exactly_one_of]
        return schema

    def _insert_field_validators(self, field: Any, schema: dict[str, Any]) -> None:
        super()._insert_field_validators(field, schema)  # type: ignore[no-untyped-call]
        if schema.get("oneOf", [None])[-1] == _BLANK:
            # drf-spectacular's "or blank" for a blank-allowing field: "" often matches the first
            # branch too, and then "exactly one of" would refuse it.
            schema["anyOf"] = schema.pop("oneOf")
        if (
            self._mapping_request
            and _is_plain_text(field)
            and schema.get("type") == "string"
            and not {"enum", "format", "pattern", "anyOf"} & schema.keys()
        ):
            minimum = field.min_length or (0 if field.allow_blank else 1)
            schema["pattern"] = text_pattern(
                min_length=minimum, max_length=field.max_length, trimmed=field.trim_whitespace
            )
            if field.trim_whitespace:  # the bounds hold for the trimmed text: the pattern says it
                schema.pop("minLength", None)
                schema.pop("maxLength", None)

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation: dict[str, Any] | None = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        filterset = getattr(self.view, "filterset_class", None)
        filters = set(filterset.base_filters) if filterset is not None else set()
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "query":
                continue
            schema = parameter.get("schema", {})
            if schema.get("type") == "string" and not {"enum", "format", "pattern"} & schema.keys():
                # Django's form fields refuse NUL (a 400); any other text is a valid filter.
                schema["pattern"] = rf"^{_ANY}*$"
            if parameter["name"] in filters and schema.get("type") != "array":
                parameter["allowEmptyValue"] = True  # django-filter: empty means "no filter"
        responses: dict[str, Any] = operation.setdefault("responses", {})
        error = self.resolve_serializer(ErrorSerializer, "response").ref
        for status in sorted(self.error_statuses(operation)):
            responses.setdefault(
                str(status),
                {
                    "description": ERROR_DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": error}},
                    **({"headers": _HEADERS[status]} if status in _HEADERS else {}),
                },
            )
        return operation

    def error_statuses(self, operation: dict[str, Any]) -> set[int]:
        """The error statuses this operation can answer, from the view and the operation."""
        view = self.view
        locations = {parameter["in"] for parameter in operation.get("parameters", [])}
        names = {parameter["name"] for parameter in operation.get("parameters", [])}
        statuses: set[int] = set()
        if not getattr(view, "public", False):
            statuses |= {401, 403}
        if "path" in locations or {"page", "cursor"} & names:
            statuses.add(404)
        if "query" in locations:
            statuses.add(400)
        if "requestBody" in operation:
            statuses |= {400, 413, 415}
        if view.get_throttles():
            statuses.add(429)
        declared: tuple[type[ApplicationError], ...] = getattr(view, "errors", ())
        statuses |= {error.status_code for error in declared}
        return statuses


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
