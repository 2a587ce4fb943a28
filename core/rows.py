"""One row with the rows its foreign keys point to, read by one SELECT built once from the models'
metadata (the reading side of ``core.sql``).

On the station round trip the ORM's query building cost more CPU than the query itself (0.6 to
1.3 ms a statement against 0.1 ms for a raw one, docs/operations.md): the statement here is built
once per process, and each row read is turned into model instances exactly as the ORM would
(``Model.from_db``, every value through its field's database converters), with the related
instances in the foreign keys' caches, as ``select_related`` leaves them. A field added to a
model is read without editing SQL.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, models
from django.db.models.fields import Field
from django.db.models.fields.related import ForeignKey


@dataclass(frozen=True, slots=True)
class _Part:
    """The columns of one model in the joined row."""

    model: type[models.Model]
    attnames: tuple[str, ...]
    start: int
    # (column index in the part, converters, expression they are given): fields with converters
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]
    relation: ForeignKey[Any, Any] | None  # the root's foreign key caching this part
    pk_index: int  # where the part's primary key is among its columns

    def instance(self, row: Sequence[Any]) -> models.Model | None:
        """The part's instance, or None when its (nullable) foreign key pointed nowhere."""
        values = list(row[self.start : self.start + len(self.attnames)])
        if values[self.pk_index] is None:
            return None
        for index, converters, expression in self.converters:
            value = values[index]
            for convert in converters:
                value = convert(value, expression, connection)
            values[index] = value
        return self.model.from_db(connection.alias, self.attnames, values)


@dataclass(frozen=True, slots=True)
class JoinedRead:
    """``SELECT <root columns>, <each related model's columns> FROM <root> [LEFT OUTER] JOIN ...
    WHERE <root key> = %s [FOR UPDATE [OF <root>]]``."""

    sql: str
    parts: tuple[_Part, ...]
    pk: Field[Any, Any]  # the key looked up: the primary key or another unique field

    def get(self, pk: Any) -> models.Model | None:
        """The root instance with key ``pk`` and its related instances cached on it, or None.
        The key is prepared by its field as a filter would prepare it."""
        with connection.cursor() as cursor:
            cursor.execute(self.sql, [self.pk.get_db_prep_value(pk, connection)])
            row = cursor.fetchone()
        if row is None:
            return None
        root = self.parts[0].instance(row)
        assert root is not None
        for part in self.parts[1:]:
            assert part.relation is not None
            part.relation.set_cached_value(root, part.instance(row))
        return root


def _columns(
    model: type[models.Model], alias: str, start: int, relation: ForeignKey[Any, Any] | None
) -> tuple[_Part, list[str]]:
    quote = connection.ops.quote_name
    fields = list(model._meta.concrete_fields)
    converters = []
    for index, field in enumerate(fields):
        found = tuple(field.get_db_converters(connection))
        if found:
            converters.append((index, found, field.get_col(alias)))
    columns = [f"{quote(alias)}.{quote(str(field.column))}" for field in fields]
    pk_index = next(n for n, field in enumerate(fields) if field.primary_key)
    part = _Part(
        model, tuple(f.attname for f in fields), start, tuple(converters), relation, pk_index
    )
    return part, columns


@functools.cache
def joined_read(
    model: type[models.Model],
    related: tuple[str, ...],
    *,
    for_update: bool = False,
    of_self: bool = False,
    key: str = "pk",
) -> JoinedRead:
    """The read of one ``model`` row by primary key (or the unique field ``key``) with the rows
    of its foreign keys ``related`` (a nullable one by an outer join, None when it is null);
    ``for_update`` locks them all, as ``select_for_update()`` with ``select_related`` does, or
    only the ``model`` row with ``of_self`` (``select_for_update(of=("self",))``). Built once."""
    quote = connection.ops.quote_name
    root, columns = _columns(model, "t0", 0, None)
    parts = [root]
    joins = []
    for n, name in enumerate(related, 1):
        fk = model._meta.get_field(name)
        assert isinstance(fk, ForeignKey), f"{name}: a foreign key"
        # PostgreSQL locks no row of the nullable side of an outer join.
        assert not (fk.null and for_update and not of_self), f"{name}: lock it with of_self"
        target = fk.related_model
        assert isinstance(target, type)
        alias = f"t{n}"
        part, more = _columns(target, alias, len(columns), fk)
        parts.append(part)
        columns += more
        target_pk = quote(str(fk.target_field.column))
        joins.append(
            f" {'LEFT OUTER' if fk.null else 'INNER'} JOIN {quote(target._meta.db_table)}"
            f" {quote(alias)}"
            f" ON {quote(alias)}.{target_pk} = {quote('t0')}.{quote(str(fk.column))}"
        )
    pk = model._meta.pk if key == "pk" else model._meta.get_field(key)
    assert isinstance(pk, Field) and pk.unique, f"{key}: a unique field"
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(model._meta.db_table)} {quote('t0')}"  # noqa: S608 - metadata names
        + "".join(joins)
        + f" WHERE {quote('t0')}.{quote(str(pk.column))} = %s"
        + (" FOR UPDATE" if for_update else "")
        + (f" OF {quote('t0')}" if for_update and of_self else "")
    )
    return JoinedRead(sql, tuple(parts), pk)


@dataclass(frozen=True, slots=True)
class RowUpdate:
    """``UPDATE <table> SET <field> = %s, ..., <counter> = <counter> + %s, ... WHERE <pk> = %s``."""

    sql: str
    fields: tuple[Field[Any, Any], ...]
    pk: Field[Any, Any]

    def execute(self, pk: Any, values: Sequence[Any], increments: Sequence[Any] = ()) -> int:
        """Set the fields to ``values`` (each prepared by its field as ``update()`` would) and add
        ``increments`` to the counters, in the connection's transaction; the rows updated."""
        params = [
            field.get_db_prep_save(value, connection)
            for field, value in zip(self.fields, values, strict=True)
        ]
        params += increments
        params.append(self.pk.get_db_prep_value(pk, connection))
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            return int(cursor.rowcount)


@functools.cache
def row_update(
    model: type[models.Model], fields: tuple[str, ...], increments: tuple[str, ...] = ()
) -> RowUpdate:
    """The UPDATE of ``fields`` (and ``increments``, numeric fields added to) of one ``model``
    row by primary key, built once."""
    quote = connection.ops.quote_name
    meta = model._meta
    set_fields = tuple(meta.get_field(name) for name in fields)
    assignments = [f"{quote(str(field.column))} = %s" for field in set_fields]  # type: ignore[union-attr]
    for name in increments:
        column = quote(str(meta.get_field(name).column))  # type: ignore[union-attr]
        assignments.append(f"{column} = {column} + %s")
    pk = meta.pk
    assert pk is not None
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)}"  # noqa: S608 - metadata names
        f" WHERE {quote(str(pk.column))} = %s"
    )
    return RowUpdate(sql, set_fields, pk)  # type: ignore[arg-type]
