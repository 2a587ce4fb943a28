"""Certificate rows written without ``Model.save()``: issuance is the hot path, and the ORM's
per-save machinery was a third of its time (docs/pki.md, "Issuance"). The statements come from
the models' metadata (``core.sql``), so a new field needs no SQL edit here."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
from decimal import Decimal
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.db import connection
from django.db.models.fields import Field

from core.sql import row_insert
from pki.choices import CertificateStatus
from pki.domain import builders, names
from pki.domain.status import crl_entry_of
from pki.models import Certificate, OcspResponse

_HOLDER_FIELDS = tuple(field.name for field in dataclasses.fields(names.Holder))


def _holder_snapshot(holder: names.Holder | None) -> dict[str, object]:
    """What ``dataclasses.asdict`` gives, without its deep copy (every field is a scalar):
    22 -> 1.3 us a certificate."""
    if holder is None:
        return {}
    data = {name: getattr(holder, name) for name in _HOLDER_FIELDS}
    data["card_type"] = int(holder.card_type)
    return data


def certificate_crl_entry(cert: Certificate) -> bytes | None:
    """The CRL entry of a certificate in its current status (``None`` when not listed)."""
    return crl_entry_of(
        int(cert.serial),
        cert.status,
        revoked_at=cert.revoked_at,
        revocation_reason=cert.revocation_reason,
        hold_since=cert.hold_since,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _WithAnswerInsert:
    """The certificate's INSERT and its OCSP answer's in one statement: ``WITH c AS (<the
    certificate's INSERT> RETURNING id) INSERT INTO <answers> SELECT c.id, %s, ... FROM c
    RETURNING <certificate id>`` (one round trip fewer a certificate, issue 12)."""

    sql: str
    fields: tuple[Field[Any, Any], ...]  # the answer's columns but its certificate's key

    def answer_params(self, values: dict[str, Any]) -> list[Any]:
        """The answer's parameters from its values by attribute name, without an
        ``OcspResponse`` instance (16 us a certificate); a field not given takes its default,
        as the instance would have."""
        return [
            field.get_db_prep_save(
                values[field.attname] if field.attname in values else field.get_default(),
                connection,
            )
            for field in self.fields
        ]


@functools.cache
def _with_answer_insert() -> _WithAnswerInsert:
    certificate = row_insert(Certificate, returning_pk=True)
    answer = row_insert(OcspResponse)
    key = OcspResponse._meta.get_field("certificate")
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in answer.fields)
    values = ", ".join("c.id" if f is key else "%s" for f in answer.fields)
    fields = tuple(f for f in answer.fields if f is not key)
    table = quote(OcspResponse._meta.db_table)
    sql = (
        f"WITH c AS ({certificate.sql}) INSERT INTO {table} ({columns})"  # noqa: S608 - metadata
        f" SELECT {values} FROM c RETURNING {quote(str(key.column))}"
    )
    return _WithAnswerInsert(sql, fields)


def certificate_row_insert(
    *,
    ca_id: int,
    cert: x509.Certificate,
    profile: str,
    holder: names.Holder | None,
    on_hold: bool,
    now: dt.datetime,
    ocsp_answer: builders.OcspAnswer | None = None,
) -> Certificate:
    """Insert the row of a certificate just signed (and its first OCSP answer, in the same
    statement), in the caller's transaction."""
    der = cert.public_bytes(serialization.Encoding.DER)
    row = Certificate(
        issuer_id=ca_id,
        serial=Decimal(cert.serial_number),
        profile=profile,
        status=CertificateStatus.ON_HOLD if on_hold else CertificateStatus.VALID,
        subject=cert.subject.rfc4514_string(),
        national_id=holder.national_id if holder else "",
        holder=_holder_snapshot(holder),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        der=der,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        revocation_reason="",
        hold_since=now if on_hold else None,
        status_changed_at=now,
        created_at=now,
    )
    row.crl_entry = certificate_crl_entry(row)
    insert = row_insert(Certificate, returning_pk=True)
    with connection.cursor() as cur:
        if ocsp_answer is None:
            cur.execute(insert.sql, insert.params(row))
        else:
            answer = {
                "authority_id": ca_id,
                "serial": row.serial,
                "status": row.status,
                "this_update": ocsp_answer.this_update,
                "next_update": ocsp_answer.next_update,
                "der": ocsp_answer.der,
            }
            both = _with_answer_insert()
            cur.execute(both.sql, insert.params(row) + both.answer_params(answer))
        fetched = cur.fetchone()
        assert fetched is not None
        row.pk = fetched[0]
    row._state.adding = False
    row._state.db = connection.alias
    return row
