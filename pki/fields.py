"""A certificate serial number column: exact, as ``numeric(50, 0)``.

Serials are random 127-bit-plus integers, beyond any integer column; Python sees a ``Decimal``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper


class SerialNumberField(models.Field):  # type: ignore[type-arg]
    description = "Certificate serial number (non-negative integer of up to 50 digits)"

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        return "numeric(50, 0)"

    def get_internal_type(self) -> str:
        return "SerialNumberField"

    def to_python(self, value: Any) -> Decimal | None:
        return None if value is None else Decimal(int(value))

    def from_db_value(
        self, value: Any, expression: Any, connection: BaseDatabaseWrapper
    ) -> Decimal | None:
        return None if value is None else Decimal(value)

    def get_db_prep_value(
        self, value: Any, connection: BaseDatabaseWrapper, prepared: bool = False
    ) -> Any:
        return None if value is None else Decimal(int(value))


def serial_param(value: int | Decimal, connection: BaseDatabaseWrapper) -> Any:
    """The parameter for a serial in raw SQL, as the column stores it."""
    return Decimal(int(value))
