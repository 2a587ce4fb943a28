"""Import of the CPS3 inventory: streamed through ``COPY`` into a staging table, then reconciled
with the registry and our PKI in set-based SQL (docs/migration.md gives the file format).

One import at a time (an advisory lock). The file goes to PostgreSQL as it is read, in chunks, so
memory stays flat whatever its size; PostgreSQL checks the encoding and the CSV quoting and names
the line of the first fault. Then, in one transaction:

1. rows that cannot be read (a required field empty, a malformed date or status) and chip serials
   on several rows are reported and left out;
2. the others are upserted by chip serial: a row identical to what is stored changes nothing (its
   digest is compared), so the same file twice changes nothing and a newer file updates;
3. certificates are upserted per card and slot, matched to our PKI where their issuer is one of
   our CAs (by common name), recorded as external otherwise;
4. the exceptions report is rebuilt from the whole inventory.

One audit event records the import with its counts and the file's digest.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TextIO

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_event_create
from core.errors import BadInput, Conflict
from cps3.models import Cps3Exception, Cps3Import

# The export's columns, in the order of docs/migration.md; a file may order them as it likes.
COLUMNS = (
    "national_id",
    "last_name",
    "first_name",
    "birth_date",
    "profession",
    "departement",
    "chip_serial",
    "card_type",
    "issued_on",
    "expires_on",
    "card_status",
    "auth_issuer",
    "auth_serial",
    "auth_not_after",
    "auth_status",
    "sign_issuer",
    "sign_serial",
    "sign_not_after",
    "sign_status",
)
REQUIRED = (
    "national_id",
    "last_name",
    "first_name",
    "profession",
    "chip_serial",
    "card_type",
    "issued_on",
    "expires_on",
    "card_status",
)
ENCODINGS = {"utf-8": "UTF8", "latin-1": "LATIN1"}
_CHUNK = 1 << 20
_LOCK_KEY = 0x43505333  # "CPS3": one inventory import at a time

Progress = Callable[[int, int], None]
"""``progress(bytes_sent, total_bytes)``, called after each chunk."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    import_id: int
    rows: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    exceptions: int


def _header(first_line: bytes, encoding: str) -> list[str]:
    try:
        text = first_line.decode(encoding)
    except UnicodeDecodeError:
        raise BadInput(
            f"Line 1 is not {encoding} text. Give the file's encoding (--encoding latin-1) or "
            "convert it to UTF-8."
        ) from None
    header = [h.strip().lower() for h in next(csv.reader([text]), [])]
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in REQUIRED if c not in header]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if unknown or missing or repeated:
        raise BadInput(
            "The header row does not match the CPS3 export format (docs/migration.md).",
            extra={"unknown": unknown, "missing": missing, "repeated": repeated},
        )
    return header


def _copy_error(exc: psycopg.Error) -> BadInput:
    """PostgreSQL's COPY error, said for the person who gave the file (with its line)."""
    diag = exc.diag
    where = diag.context or ""
    line = ""
    if ", line " in where:
        # "COPY cps3_staging, line 12, column x: ..."; the header row was not sent to COPY.
        counted = where.split(", line ", 1)[1].split(",", 1)[0].split(":", 1)[0]
        line = str(int(counted) + 1) if counted.isdigit() else ""
    message = diag.message_primary or str(exc)
    return BadInput(
        f"The file could not be read{f' at line {line}' if line else ''}: {message}. "
        "Nothing was imported.",
        extra={"line": int(line) if line.isdigit() else None},
    )


def cps3_import(
    *,
    stream: IO[bytes],
    filename: str,
    size: int,
    actor: Actor,
    encoding: str = "utf-8",
    progress: Progress | None = None,
) -> ImportResult:
    """Import one CPS3 export; see the module docstring. Raises ``BadInput`` and imports nothing
    when the file cannot be read whole."""
    if encoding not in ENCODINGS:
        raise BadInput(f"Unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}.")
    digest = hashlib.sha256()
    first = stream.readline(1 << 16)
    digest.update(first)
    if first.startswith(b"\xef\xbb\xbf"):
        first = first[3:]  # a UTF-8 byte-order mark: dropped
    if not first.strip():
        raise BadInput("The file is empty: a header row is expected.")
    header = _header(first, encoding)
    sent = len(first)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_LOCK_KEY])
            if not cursor.fetchone()[0]:
                raise Conflict("Another CPS3 import is running; try again when it has finished.")
            cursor.execute("TRUNCATE cps3_staging RESTART IDENTITY")
        pg = connection.connection
        assert pg is not None
        columns = ", ".join(header)
        sql = (
            f"COPY cps3_staging ({columns}) FROM STDIN "
            f"WITH (FORMAT csv, ENCODING '{ENCODINGS[encoding]}')"
        )
        try:
            with pg.cursor() as raw, raw.copy(sql) as copy:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
                    copy.write(chunk)
                    sent += len(chunk)
                    if progress:
                        progress(sent, size)
        except psycopg.DataError as exc:
            raise _copy_error(exc) from None
        run = Cps3Import.objects.create(
            sha256=digest.hexdigest(),
            filename=filename[:255],
            requested_by=actor.label,
            started_at=timezone.now(),
        )
        counts = _reconcile(run.pk)
        Cps3Import.objects.filter(pk=run.pk).update(
            status=Cps3Import.Status.DONE, finished_at=timezone.now(), **counts
        )
        audit_event_create(
            actor=actor,
            action="cps3.import",
            object_type="cps3_import",
            object_id=str(run.pk),
            details={"file_sha256": run.sha256, "filename": run.filename, **counts},
        )
    return ImportResult(import_id=run.pk, **counts)


# --- reconciliation (set-based SQL) ----------------------------------------------------------

# Rows the inventory can take: required fields present, dates and statuses well-formed, and a
# chip serial on one row only. Materialised once, read by the upserts.
_CLEAN = """
CREATE TEMP TABLE cps3_clean ON COMMIT DROP AS
SELECT s.line,
       trim(s.national_id) AS national_id,
       trim(s.last_name) AS last_name,
       trim(s.first_name) AS first_name,
       CASE WHEN cps3_is_date(s.birth_date) THEN s.birth_date::date END AS birth_date,
       trim(s.profession) AS profession,
       upper(trim(coalesce(s.departement, ''))) AS departement,
       upper(trim(s.chip_serial)) AS chip_serial,
       upper(trim(s.card_type)) AS card_type,
       s.issued_on::date AS issued_on,
       s.expires_on::date AS expires_on,
       lower(trim(s.card_status)) AS status,
       s.auth_issuer, s.auth_serial, s.auth_not_after, s.auth_status,
       s.sign_issuer, s.sign_serial, s.sign_not_after, s.sign_status,
       md5(concat_ws('|', s.national_id, s.last_name, s.first_name, s.birth_date, s.profession,
                     s.departement, s.card_type, s.issued_on, s.expires_on, s.card_status,
                     s.auth_issuer, s.auth_serial, s.auth_not_after, s.auth_status,
                     s.sign_issuer, s.sign_serial, s.sign_not_after, s.sign_status)) AS digest
  FROM cps3_staging s
 WHERE NOT s.invalid AND NOT s.duplicate
"""

# Why a row cannot be read (first reason found), written on the staging row.
_INVALID = """
UPDATE cps3_staging SET invalid = true, reason = r.reason
  FROM (SELECT line, CASE
          WHEN coalesce(trim(national_id), '') = '' THEN 'national_id is empty'
          WHEN coalesce(trim(last_name), '') = '' THEN 'last_name is empty'
          WHEN coalesce(trim(first_name), '') = '' THEN 'first_name is empty'
          WHEN coalesce(trim(profession), '') !~ '^[0-9]{2}$'
            THEN 'profession is not a 2-digit code'
          WHEN coalesce(trim(chip_serial), '') !~* '^[0-9a-f]{8,32}$'
            THEN 'chip_serial is not 8 to 32 hexadecimal digits'
          WHEN upper(trim(coalesce(card_type, ''))) NOT IN ('CPS', 'CPF', 'CPE', 'CPA')
            THEN 'card_type is not CPS, CPF, CPE or CPA'
          WHEN NOT cps3_is_date(coalesce(issued_on, '')) THEN 'issued_on is not a YYYY-MM-DD date'
          WHEN NOT cps3_is_date(coalesce(expires_on, '')) THEN 'expires_on is not a YYYY-MM-DD date'
          WHEN lower(trim(coalesce(card_status, '')))
               NOT IN ('active', 'suspended', 'revoked', 'expired')
            THEN 'card_status is not active, suspended, revoked or expired'
          WHEN coalesce(birth_date, '') <> '' AND NOT cps3_is_date(birth_date)
            THEN 'birth_date is not a YYYY-MM-DD date'
          WHEN coalesce(auth_serial, '') <> '' AND (auth_serial !~* '^[0-9a-f]{1,64}$'
               OR NOT cps3_is_date(coalesce(auth_not_after, ''))
               OR lower(coalesce(auth_status, '')) NOT IN ('valid', 'revoked', 'expired'))
            THEN 'auth certificate: serial (hex), not_after (date) and status are required'
          WHEN coalesce(sign_serial, '') <> '' AND (sign_serial !~* '^[0-9a-f]{1,64}$'
               OR NOT cps3_is_date(coalesce(sign_not_after, ''))
               OR lower(coalesce(sign_status, '')) NOT IN ('valid', 'revoked', 'expired'))
            THEN 'sign certificate: serial (hex), not_after (date) and status are required'
        END AS reason FROM cps3_staging) r
 WHERE cps3_staging.line = r.line AND r.reason IS NOT NULL
"""

_DUPLICATE = """
UPDATE cps3_staging SET duplicate = true
 WHERE NOT invalid AND upper(trim(chip_serial)) IN (
       SELECT upper(trim(chip_serial)) FROM cps3_staging WHERE NOT invalid
        GROUP BY 1 HAVING count(*) > 1)
"""

# xmax = 0 tells a row this statement inserted from one it updated.
_UPSERT_CARDS = """
WITH up AS (
  INSERT INTO cps3_cps3card AS c (chip_serial, national_id, last_name, first_name, birth_date,
         profession, departement, card_type, issued_on, expires_on, status, holder_id,
         row_digest, last_import_id, updated_at)
  SELECT k.chip_serial, k.national_id, k.last_name, k.first_name, k.birth_date, k.profession,
         k.departement, k.card_type, k.issued_on, k.expires_on, k.status, h.id, k.digest,
         %(run)s, now()
    FROM cps3_clean k LEFT JOIN cms_holder h ON h.national_id = k.national_id
  ON CONFLICT (chip_serial) DO UPDATE SET
         national_id = EXCLUDED.national_id, last_name = EXCLUDED.last_name,
         first_name = EXCLUDED.first_name, birth_date = EXCLUDED.birth_date,
         profession = EXCLUDED.profession, departement = EXCLUDED.departement,
         card_type = EXCLUDED.card_type, issued_on = EXCLUDED.issued_on,
         expires_on = EXCLUDED.expires_on, status = EXCLUDED.status,
         holder_id = EXCLUDED.holder_id, row_digest = EXCLUDED.row_digest,
         last_import_id = EXCLUDED.last_import_id, updated_at = EXCLUDED.updated_at
   WHERE c.row_digest IS DISTINCT FROM EXCLUDED.row_digest
      OR c.holder_id IS DISTINCT FROM EXCLUDED.holder_id
  RETURNING (xmax = 0) AS inserted, id
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up
"""

# Certificates of the rows that changed (others are as stored). Our CAs are matched by the
# common name in the issuer; the serial is then compared as a number.
_UPSERT_CERTS = """
WITH slots AS (
  SELECT c.id AS card_id, x.slot, x.issuer, lower(ltrim(x.serial, '0')) AS serial_hex,
         x.not_after::date AS not_after, lower(x.status) AS status
    FROM cps3_clean k
    JOIN cps3_cps3card c ON c.chip_serial = k.chip_serial AND c.last_import_id = %(run)s
    CROSS JOIN LATERAL (VALUES
      ('auth', k.auth_issuer, k.auth_serial, k.auth_not_after, k.auth_status),
      ('sign', k.sign_issuer, k.sign_serial, k.sign_not_after, k.sign_status)
    ) AS x(slot, issuer, serial, not_after, status)
   WHERE coalesce(x.serial, '') <> ''
), matched AS (
  SELECT s.*, ca.id AS ca_id,
         (SELECT p.id FROM pki_certificate p
           WHERE ca.id IS NOT NULL AND p.issuer_id = ca.id
             AND p.serial = cps3_hex_numeric(s.serial_hex)) AS certificate_id
    FROM slots s
    LEFT JOIN pki_certificateauthority ca
      ON ca.common_name = substring(s.issuer from 'CN=([^,]+)')
), gone AS (
  DELETE FROM cps3_cps3certificate d
   WHERE d.card_id IN (SELECT c.id FROM cps3_cps3card c WHERE c.last_import_id = %(run)s)
     AND NOT EXISTS (SELECT 1 FROM matched m WHERE m.card_id = d.card_id AND m.slot = d.slot)
)
INSERT INTO cps3_cps3certificate (card_id, slot, issuer, serial_hex, not_after, status, external,
       certificate_id)
SELECT card_id, slot, issuer, serial_hex, not_after, status, ca_id IS NULL, certificate_id
  FROM matched
ON CONFLICT (card_id, slot) DO UPDATE SET issuer = EXCLUDED.issuer,
       serial_hex = EXCLUDED.serial_hex, not_after = EXCLUDED.not_after,
       status = EXCLUDED.status, external = EXCLUDED.external,
       certificate_id = EXCLUDED.certificate_id
"""

# The report: the file's own faults (with their lines), then what the inventory shows.
_EXCEPTIONS = """
INSERT INTO cps3_cps3exception (kind, line, chip_serial, national_id, detail, found_by_id)
SELECT 'invalid_row', line, coalesce(chip_serial, ''), coalesce(national_id, ''), reason, %(run)s
  FROM cps3_staging WHERE invalid
UNION ALL
SELECT 'duplicate_serial', line, upper(trim(chip_serial)), coalesce(national_id, ''),
       'chip serial also on line(s) ' || (
         SELECT string_agg(o.line::text, ', ' ORDER BY o.line) FROM cps3_staging o
          WHERE o.duplicate AND upper(trim(o.chip_serial)) = upper(trim(s.chip_serial))
            AND o.line <> s.line), %(run)s
  FROM cps3_staging s WHERE duplicate
UNION ALL
SELECT 'holder_unknown', NULL, chip_serial, national_id,
       'no holder with this national identifier in the registry', %(run)s
  FROM cps3_cps3card WHERE holder_id IS NULL
UNION ALL
SELECT 'identity_conflict', NULL, c.chip_serial, c.national_id,
       format('registry: %%s %%s; export: %%s %%s', h.last_name, h.first_name,
              c.last_name, c.first_name), %(run)s
  FROM cps3_cps3card c JOIN cms_holder h ON h.id = c.holder_id
 WHERE upper(h.last_name) <> upper(c.last_name) OR upper(h.first_name) <> upper(c.first_name)
UNION ALL
SELECT 'identity_conflict', NULL, '', national_id,
       format('%%s cards carry %%s different identities for this national identifier',
              count(*), count(DISTINCT (upper(last_name), upper(first_name), birth_date))),
       %(run)s
  FROM cps3_cps3card GROUP BY national_id
HAVING count(DISTINCT (upper(last_name), upper(first_name), birth_date)) > 1
UNION ALL
SELECT 'several_active', NULL, string_agg(chip_serial, ' ' ORDER BY chip_serial), national_id,
       format('%%s active CPS3 cards', count(*)), %(run)s
  FROM cps3_cps3card WHERE status = 'active' GROUP BY national_id HAVING count(*) > 1
UNION ALL
SELECT 'card_revoked', NULL, chip_serial, national_id, 'the export lists it as revoked', %(run)s
  FROM cps3_cps3card WHERE status = 'revoked'
UNION ALL
SELECT 'card_expired', NULL, chip_serial, national_id,
       format('expired on %%s', expires_on), %(run)s
  FROM cps3_cps3card WHERE status = 'expired' OR expires_on < current_date
UNION ALL
SELECT 'certificate_unknown', NULL, c.chip_serial, c.national_id,
       format('%%s certificate %%s from %%s is not in our PKI', x.slot, x.serial_hex, x.issuer),
       %(run)s
  FROM cps3_cps3certificate x JOIN cps3_cps3card c ON c.id = x.card_id
 WHERE NOT x.external AND x.certificate_id IS NULL
UNION ALL
SELECT 'certificate_mismatch', NULL, c.chip_serial, c.national_id,
       format('%%s certificate %%s: export says %%s until %%s, our PKI %%s until %%s', x.slot,
              x.serial_hex, x.status, x.not_after, p.status, p.not_after::date), %(run)s
  FROM cps3_cps3certificate x JOIN cps3_cps3card c ON c.id = x.card_id
  JOIN pki_certificate p ON p.id = x.certificate_id
 WHERE x.not_after <> p.not_after::date OR (x.status = 'revoked') <> (p.status = 'revoked')
"""


def _reconcile(run_id: int) -> dict[str, int]:
    params = {"run": run_id}
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM cps3_staging")
        rows = cursor.fetchone()[0]
        cursor.execute(_INVALID)
        cursor.execute(_DUPLICATE)
        cursor.execute("SELECT count(*) FROM cps3_staging WHERE invalid OR duplicate")
        rejected = cursor.fetchone()[0]
        cursor.execute("DROP TABLE IF EXISTS cps3_clean")  # an outer transaction may hold one
        cursor.execute(_CLEAN)
        cursor.execute(_UPSERT_CARDS, params)
        inserted, updated = cursor.fetchone()
        cursor.execute(_UPSERT_CERTS, params)
        cursor.execute("DELETE FROM cps3_cps3exception")
        cursor.execute(_EXCEPTIONS, params)
        exceptions = cursor.rowcount
    return {
        "rows": rows,
        "inserted": inserted,
        "updated": updated,
        "unchanged": rows - rejected - inserted - updated,
        "rejected": rejected,
        "exceptions": exceptions,
    }


def exceptions_csv(out: TextIO) -> int:
    """Write the current exceptions report as CSV (UTF-8, header row); returns the row count."""
    writer = csv.writer(out)
    writer.writerow(["kind", "reason", "line", "chip_serial", "national_id", "detail"])
    labels = dict(Cps3Exception._meta.get_field("kind").choices or [])
    count = 0
    for row in Cps3Exception.objects.order_by("kind", "line", "id").iterator(chunk_size=5000):
        writer.writerow(
            [
                row.kind,
                labels.get(row.kind, ""),
                row.line or "",
                row.chip_serial,
                row.national_id,
                row.detail,
            ]
        )
        count += 1
    return count
