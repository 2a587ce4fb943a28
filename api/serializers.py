"""The base of the views' JSON input serializers: values of the type the schema declares.

DRF coerces what it can (``0`` for a text field becomes ``"0"``, ``"7"`` for an integer becomes
``7``, ``1`` for a UUID becomes a UUID): a request the schema calls invalid would then be accepted.
Here the JSON type is checked first, field by field, and a mismatch is a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers
from rest_framework.fields import empty

# (field class, the JSON types it takes); the first match wins, so subclasses come first.
_JSON_TYPES: tuple[tuple[type[serializers.Field[Any, Any, Any, Any]], tuple[type, ...]], ...] = (
    (serializers.BooleanField, (bool,)),
    (serializers.IntegerField, (int,)),
    (serializers.FloatField, (int, float)),
    (serializers.DecimalField, (int, float, str)),
    (serializers.MultipleChoiceField, (list,)),
    (serializers.ChoiceField, (str,)),
    (serializers.CharField, (str,)),
    (serializers.UUIDField, (str,)),
    (serializers.DateTimeField, (str,)),
    (serializers.DateField, (str,)),
    (serializers.ListField, (list,)),
    (serializers.DictField, (dict,)),
    (serializers.Serializer, (dict,)),
)
_NAMES = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}
# The JSON types of each field class met so far (None: any, the field checks it), looked up in
# _JSON_TYPES once per class, not once per field and list item of every request.
_TYPES_OF: dict[type, tuple[type, ...] | None] = {}


def _json_types(field_class: type) -> tuple[type, ...] | None:
    """The JSON types of ``field_class``: its first match in ``_JSON_TYPES``, cached."""
    try:
        return _TYPES_OF[field_class]
    except KeyError:
        found = next((types for cls, types in _JSON_TYPES if issubclass(field_class, cls)), None)
        _TYPES_OF[field_class] = found  # a race computes the same value
        return found


def json_type_error(field: serializers.Field[Any, Any, Any, Any], value: Any) -> str | None:
    """Why ``value`` is not of the JSON type ``field`` takes, or None if it is."""
    if value is None:
        return None  # DRF's own check: "may not be null" unless the field allows it
    types = _json_types(type(field))
    if types is None:
        return None
    if isinstance(value, bool) and bool not in types:
        return f"Expected {_NAMES.get(types[0], 'an object')}, not a boolean."
    if not isinstance(value, types):
        return f"Expected {_NAMES.get(types[0], 'an object')}."
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        child = field.child
        if _json_types(type(child)) is not None:  # else no item can be of a wrong type
            for item in value:
                problem = json_type_error(child, item)
                if problem is not None:
                    return problem
    return None


# An input serializer whose fields take only the JSON type the schema says. (A comment, not a
# docstring: drf-spectacular would describe every input component with it.)
class JsonInputSerializer(serializers.Serializer[dict[str, Any]]):
    # Fields of which a request gives one and only one; the schema says so too (api.schema).
    exactly_one_of: tuple[str, ...] = ()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.exactly_one_of and sum(name in attrs for name in self.exactly_one_of) != 1:
            raise serializers.ValidationError(
                f"Give exactly one of {', '.join(self.exactly_one_of)}."
            )
        validated: dict[str, Any] = super().validate(attrs)  # the next class's rules, if any
        return validated

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping) and not hasattr(data, "getlist"):  # JSON, not a form
            errors: dict[str, list[str]] = {}
            for name, field in self.fields.items():
                if field.read_only:
                    continue
                value = field.get_value(data)
                if value is empty:
                    continue
                problem = json_type_error(field, value)
                if problem is not None:
                    errors[name] = [problem]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
