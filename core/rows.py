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
    pk_index: int  # the part's primary key column (NULL: a nullable foreign key pointing nowhere)

    def instance(self, row: Sequence[Any]) -> models.Model | None:
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
    """``SELECT <root columns>, <each related model's columns> FROM <root> [LEFT] JOIN ... WHERE
    <root pk> = %s [FOR UPDATE [OF <root>]]``."""

    sql: str
    parts: tuple[_Part, ...]
    pk: Field[Any, Any]

    def get(self, pk: Any) -> models.Model | None:
        """The root instance with primary key ``pk`` and its related instances cached on it, or
        None. The key is prepared by its field as a filter would prepare it."""
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
    pk_index = next(index for index, field in enumerate(fields) if field.primary_key)
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
    lock_root_only: bool = False,
) -> JoinedRead:
    """The read of one ``model`` row by primary key with the rows of its foreign keys
    ``related`` (a nullable one outer-joined: None cached when it points nowhere);
    ``for_update`` locks them all, as ``select_for_update()`` with ``select_related`` does, or
    with ``lock_root_only`` the root row alone, as ``select_for_update(of=("self",))`` (the
    only lock PostgreSQL allows beside an outer join). Built once."""
    quote = connection.ops.quote_name
    root, columns = _columns(model, "t0", 0, None)
    parts = [root]
    joins = []
    for n, name in enumerate(related, 1):
        fk = model._meta.get_field(name)
        assert isinstance(fk, ForeignKey), f"{name}: a foreign key"
        assert not (fk.null and for_update and not lock_root_only), (
            f"{name} outer-joined: lock_root_only"
        )
        target = fk.related_model
        assert isinstance(target, type)
        alias = f"t{n}"
        part, more = _columns(target, alias, len(columns), fk)
        parts.append(part)
        columns += more
        target_pk = quote(str(fk.target_field.column))
        join = "LEFT OUTER JOIN" if fk.null else "INNER JOIN"
        joins.append(
            f" {join} {quote(target._meta.db_table)} {quote(alias)}"
            f" ON {quote(alias)}.{target_pk} = {quote('t0')}.{quote(str(fk.column))}"
        )
    pk = model._meta.pk
    assert pk is not None
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(model._meta.db_table)} {quote('t0')}"  # noqa: S608 - metadata names
        + "".join(joins)
        + f" WHERE {quote('t0')}.{quote(str(pk.column))} = %s"
        + (f" FOR UPDATE OF {quote('t0')}" if for_update and lock_root_only else "")
        + (" FOR UPDATE" if for_update and not lock_root_only else "")
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
