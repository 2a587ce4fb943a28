"""One-statement INSERTs generated from a model's metadata.

The hot writes that bypass ``Model.save()`` (the audit append, certificate issuance: the ORM's
per-save machinery was a third of the issuance time, docs/pki.md) still take their column list
and parameter conversions from the model: a field added to the model is written without editing
SQL, and each value is converted by its own field exactly as ``save()`` would.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.db import connection, models
from django.db.models.fields import Field


@dataclass(frozen=True, slots=True)
class RowInsert:
    """``INSERT INTO <table> (<every concrete column but a generated key>) VALUES (...)``."""

    fields: tuple[Field[Any, Any], ...]
    sql: str

    def params(self, row: models.Model) -> list[Any]:
        """The parameters for ``row``, in column order, prepared by each field.

        Values are read from the instance as set; an ``auto_now_add`` field left empty is filled
        as ``save()`` would fill it.
        """
        params = []
        for field in self.fields:
            value = getattr(row, field.attname)
            if value is None and getattr(field, "auto_now_add", False):
                value = field.pre_save(row, add=True)
            params.append(field.get_db_prep_save(value, connection))
        return params


def _column(field: Field[Any, Any]) -> str:
    column = field.column
    assert column is not None, "concrete fields have a column"
    return column


@functools.cache
def row_insert(model: type[models.Model], *, returning_pk: bool = False) -> RowInsert:
    """The INSERT of one ``model`` row (returning its generated key if asked), built once."""
    fields = tuple(f for f in model._meta.concrete_fields if not f.db_returning)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(_column(f)) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    table = quote(model._meta.db_table)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608 - metadata names
    if returning_pk:
        sql += f" RETURNING {quote(_column(model._meta.pk))}"
    return RowInsert(fields, sql)
