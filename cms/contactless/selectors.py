"""Reads of the status service and the published deny lists."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import connection
from django.utils import timezone

from cms.choices import CardStatus, DenyListKind
from cms.models import DenyListPublication

UID_PATTERN = re.compile(r"^[0-9A-Fa-f]{14}$")  # a 7-byte DESFire UID in hex
CARD_NUMBER_PATTERN = re.compile(r"^8025000001\d{10}$")  # cms.models.Card's number format

# What a relying party is told (no personal data, no finer lifecycle state): a card that may be
# accepted, one suspended (or issued and not activated yet: its certificates are on hold too),
# one that will never be accepted again, and one we do not know.
_ANSWER = {
    CardStatus.ACTIVE: "active",
    CardStatus.ISSUED: "suspended",
    CardStatus.SUSPENDED: "suspended",
    CardStatus.REVOKED: "revoked",
    CardStatus.EXPIRED: "revoked",
    CardStatus.DESTROYED: "revoked",
}


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    status: str
    answered_at: dt.datetime
    deny_list_version: int | None


def deny_list_version() -> int | None:
    return (
        DenyListPublication.objects.filter(kind=DenyListKind.FULL)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    )


_STATUS_SQL = (
    "SELECT (SELECT status FROM cms_card WHERE {column} = %s),"
    " (SELECT max(version) FROM cms_denylistpublication WHERE kind = 'full')"
)


def contactless_status(*, uid: str | None = None, card_number: str | None = None) -> StatusAnswer:
    """The status of the card with this DESFire UID or card number (inputs already validated).
    One round trip to the database: this is the hot public path (bench/contactless.py)."""
    column, value = (
        ("desfire_uid", uid.upper()) if uid is not None else ("card_number", card_number)
    )
    found, version = _prepared_row(_STATUS_SQL.format(column=column), [value])
    status = _ANSWER.get(CardStatus(found), "unknown") if found is not None else "unknown"
    return StatusAnswer(status=status, answered_at=timezone.now(), deny_list_version=version)


def _prepared_row(sql: str, params: list[Any]) -> tuple[Any, ...]:
    """One row, by a statement PostgreSQL prepares once per connection (persistent connections,
    CONN_MAX_AGE): Django's cursors bind on the client side, so the server plans every query
    again, which measured (loaded 2-core machine) as long as the lookup itself. ADR 0024."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cur:
        cur.execute(sql, params, prepare=True)
        row = cur.fetchone()
    # a SELECT of scalar subqueries always gives one row
    return tuple(row) if row is not None else ()


def deny_list_full_latest() -> DenyListPublication | None:
    return DenyListPublication.objects.filter(kind=DenyListKind.FULL).order_by("-version").first()


def deny_list_delta_since(version: int) -> DenyListPublication | None:
    """The delta that takes a list at ``version`` to ``version + 1``."""
    return DenyListPublication.objects.filter(kind=DenyListKind.DELTA, base_version=version).first()


def deny_list_full_get(version: int) -> DenyListPublication | None:
    return DenyListPublication.objects.filter(kind=DenyListKind.FULL, version=version).first()
