"""One-statement INSERTs generated from a model's metadata.

The hot writes that bypass ``Model.save()`` (the audit append, certificate issuance: the ORM's
per-save machinery was a third of the issuance time, docs/pki.md) still take their column list
and parameter conversions from the model: a field added to the model is written without editing
SQL, and each value is converted by its own field exactly as ``save()`` would.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
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

    def sql_for(self, count: int) -> str:
        """The INSERT of ``count`` rows in one VALUES list, their parameters one row's after
        another's (for a few rows; many go through :class:`RowsInsert`)."""
        head, _, values = self.sql.partition(" VALUES ")
        assert " RETURNING " not in values, "one row's INSERT returns one key"
        return f"{head} VALUES {', '.join([values] * count)}"


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


@dataclass(frozen=True, slots=True)
class RowsInsert:
    """``INSERT INTO <table> (<columns>) SELECT * FROM unnest(<one typed array a column>)``: many
    rows in one statement with as many parameters as columns, whatever the number of rows (a
    multi-row VALUES list binds rows x columns parameters, and PostgreSQL parses every one)."""

    fields: tuple[Field[Any, Any], ...]
    sql: str

    def execute(self, rows: Sequence[models.Model]) -> None:
        """Insert ``rows`` in the connection's transaction. The arrays are bound on the server in
        binary (Django's cursors quote parameters into the SQL text, and quoting thousands of
        values a column was most of the statement's time)."""
        if not rows:
            return
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(self.sql, self.params(rows), binary=True)

    def params(self, rows: Sequence[models.Model]) -> list[list[Any]]:
        """One array a column, each value prepared by its field as :meth:`RowInsert.params`."""
        columns: list[list[Any]] = []
        for field in self.fields:
            values = [getattr(row, field.attname) for row in rows]
            if getattr(field, "auto_now_add", False):
                values = [
                    field.pre_save(row, add=True) if value is None else value
                    for row, value in zip(rows, values, strict=True)
                ]
            if type(field) not in _PLAIN:
                values = [field.get_db_prep_save(value, connection) for value in values]
            columns.append(values)
        return columns


# Fields whose preparation returns a value of their Python type unchanged on PostgreSQL: a bulk
# insert skips the per-value call for them (rows hold values of the fields' types, as the callers
# build them).
_PLAIN: frozenset[type[Field[Any, Any]]] = frozenset(
    {
        models.CharField,
        models.TextField,
        models.BigIntegerField,
        models.IntegerField,
        models.PositiveBigIntegerField,
        models.PositiveIntegerField,
        models.PositiveSmallIntegerField,
        models.SmallIntegerField,
        models.BooleanField,
        models.DateTimeField,
    }
)


@functools.cache
def rows_insert(model: type[models.Model], *, suffix: str = "") -> RowsInsert:
    """The set-based INSERT of many ``model`` rows (``suffix``: an ``ON CONFLICT`` clause), built
    once."""
    fields = tuple(f for f in model._meta.concrete_fields if not f.db_returning)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(_column(f)) for f in fields)
    arrays = ", ".join(f"%s::{_array_type(f)}" for f in fields)
    table = quote(model._meta.db_table)
    sql = f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays})"  # noqa: S608 - metadata
    return RowsInsert(fields, f"{sql} {suffix}".rstrip())


def _array_type(field: Field[Any, Any]) -> str:
    db_type = field.db_type(connection)
    assert db_type is not None, "concrete fields have a column type"
    return f"{db_type.split('(')[0]}[]"
