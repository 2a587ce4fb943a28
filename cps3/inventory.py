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
4. the exceptions report is brought up to date: only what can have changed since the previous
   import is redone when that can be proved to give what a full rebuild gives (docs/adr/0030),
   else it is rebuilt from the whole inventory.

One audit event records the import with its counts and the file's digest.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, TextIO

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
# Each step's duration is logged (DEBUG) under this logger: the import's profile.
logger = logging.getLogger("cps3.inventory")

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
            # No other write to the inventory or its report while the import runs (writers in
            # flight are waited for, reads go on): a card written meanwhile by anyone else would
            # escape both this import's report and, its horizon recorded, the next incremental one
            # (docs/adr/0030).
            cursor.execute(
                "LOCK TABLE cps3_cps3card, cps3_cps3exception IN SHARE ROW EXCLUSIVE MODE"
            )
            cursor.execute("TRUNCATE cps3_staging RESTART IDENTITY")
        pg = connection.connection
        assert pg is not None
        columns = ", ".join(header)
        sql = (
            f"COPY cps3_staging ({columns}) FROM STDIN "
            f"WITH (FORMAT csv, ENCODING '{ENCODINGS[encoding]}')"
        )
        started = time.perf_counter()
        try:
            with pg.cursor() as raw:
                with raw.copy(sql) as copy:
                    while chunk := stream.read(_CHUNK):
                        digest.update(chunk)
                        copy.write(chunk)
                        sent += len(chunk)
                        if progress:
                            progress(sent, size)
                copied = raw.rowcount  # COPY's own count: no scan of the staging table
        except psycopg.DataError as exc:
            raise _copy_error(exc) from None
        logger.debug("cps3 import step copy: %.2f s", time.perf_counter() - started)
        run = Cps3Import.objects.create(
            sha256=digest.hexdigest(),
            filename=filename[:255],
            requested_by=actor.label,
            started_at=timezone.now(),
        )
        counts = _reconcile(run.pk, rows=copied)
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
# ``cps3_staging_checked`` (a view, migrations 0001 and 0004) gives each staging row its digest,
# its normalised chip serial (``serial_key``) and the reason it cannot be read, or NULL. The file
# is read through it once; the reason is computed only for the rows that differ from the inventory
# (docs/adr/0025: a row whose digest is stored was valid when it was stored).

# Memory for the hash joins and aggregates over the whole file (no spill to disk at 1.5 million
# rows), and for the index builds of a bulk load; SET LOCAL, for this transaction only.
WORK_MEM = "256MB"
MAINTENANCE_WORK_MEM = "512MB"
# A first import (empty inventory) of at least this many rows is a bulk load: the inventory's
# secondary indexes and constraints are dropped, the rows inserted, then all rebuilt in one pass.
BULK_MIN_ROWS = 10_000

# The rows of the file that differ from the inventory (a new chip serial, or another digest), with
# their reason: the only pass that computes the digest, and the checks only for these rows.
_PENDING = """
CREATE TEMP TABLE cps3_pending ON COMMIT DROP AS
SELECT k.line, k.serial_key, k.digest, k.reason, k.auth_issuer, k.sign_issuer
  FROM cps3_staging_checked k
 WHERE NOT EXISTS (SELECT FROM cps3_cps3card o
                    WHERE o.chip_serial = k.serial_key AND o.row_digest = k.digest)
"""

# Chip serials on several readable rows: all of them are left out and reported. Over the whole
# file (an unchanged row may share its serial with a new one).
_DUPLICATES = """
CREATE TEMP TABLE cps3_duplicates ON COMMIT DROP AS
SELECT upper(trim(s.chip_serial)) AS chip_serial
  FROM cps3_staging s
 WHERE NOT EXISTS (SELECT FROM cps3_pending r WHERE r.line = s.line AND r.reason IS NOT NULL)
 GROUP BY 1 HAVING count(*) > 1
"""

_COLUMNS = """chip_serial, national_id, last_name, first_name, birth_date,
         profession, departement, card_type, issued_on, expires_on, status, holder_id,
         auth_issuer, auth_serial, auth_not_after, auth_status, auth_external,
         sign_issuer, sign_serial, sign_not_after, sign_status, sign_external,
         row_digest, last_import_id, updated_at"""

# The pending rows that can be read and are not duplicates, typed and normalised. Whether a
# certificate's issuer is one of our CAs is decided once per distinct issuer, not per row.
_SELECT = """
SELECT p.serial_key, trim(k.national_id), trim(k.last_name), trim(k.first_name),
       nullif(k.birth_date, '')::date, trim(k.profession),
       upper(trim(coalesce(k.departement, ''))), upper(trim(k.card_type)), k.issued_on::date,
       k.expires_on::date, lower(trim(k.card_status)), h.id,
       coalesce(k.auth_issuer, ''), lower(ltrim(coalesce(k.auth_serial, ''), '0')),
       CASE WHEN cps3_is_date(k.auth_not_after) THEN k.auth_not_after::date END,
       lower(coalesce(k.auth_status, '')),
       coalesce(k.auth_serial, '') <> '' AND coalesce(ia.external, true),
       coalesce(k.sign_issuer, ''), lower(ltrim(coalesce(k.sign_serial, ''), '0')),
       CASE WHEN cps3_is_date(k.sign_not_after) THEN k.sign_not_after::date END,
       lower(coalesce(k.sign_status, '')),
       coalesce(k.sign_serial, '') <> '' AND coalesce(si.external, true),
       p.digest, %(run)s, now()
  FROM cps3_pending p
  JOIN cps3_staging k ON k.line = p.line
  LEFT JOIN cms_holder h ON h.national_id = trim(k.national_id)
  LEFT JOIN cps3_issuers ia ON ia.issuer = k.auth_issuer
  LEFT JOIN cps3_issuers si ON si.issuer = k.sign_issuer
 WHERE p.reason IS NULL
   AND NOT EXISTS (SELECT FROM cps3_duplicates d WHERE d.chip_serial = p.serial_key)
"""

# The certificate issuers the rows to write name, each once, with whether it is one of our CAs:
# from the pending rows (which carry their issuers), without a scan of the file.
_ISSUERS = """
CREATE TEMP TABLE cps3_issuers ON COMMIT DROP AS
SELECT i.issuer, coalesce(substring(i.issuer from 'CN=([^,]+)') NOT IN (
         SELECT common_name FROM pki_certificateauthority), true) AS external
  FROM (SELECT auth_issuer AS issuer FROM cps3_pending
         WHERE reason IS NULL AND auth_issuer IS NOT NULL
        UNION SELECT sign_issuer FROM cps3_pending
         WHERE reason IS NULL AND sign_issuer IS NOT NULL) i
"""

# A bulk load (the empty inventory: every row is pending) in one pass over the file, planned in
# parallel: each row's line, chip serial key, digest and reason (the same checks as the staging
# view's, with the dates looked up by hash joins, which parallel workers can run, where the view
# uses hashed subplans, which they cannot), and the typed, normalised values the insert writes,
# with the holder found by national identifier and whether each certificate's issuer is one of our
# CAs (by common name, as ``_ISSUERS`` decides it). A value that cannot be typed (a row with a
# reason) is NULL; such rows are never inserted. ``cps3_pending`` has the columns the re-import's
# has (line, serial_key, digest, reason), so the steps after it read either alike.
_BULK_PENDING = """
CREATE TEMP TABLE cps3_pending ON COMMIT DROP AS
SELECT t.line, upper(trim(t.chip_serial)) AS serial_key,
       lpad(to_hex(hashtextextended(concat_ws('|', t.national_id, t.last_name, t.first_name,
           t.birth_date, t.profession, t.departement, t.chip_serial, t.card_type, t.issued_on,
           t.expires_on, t.card_status, t.auth_issuer, t.auth_serial, t.auth_not_after,
           t.auth_status, t.sign_issuer, t.sign_serial, t.sign_not_after, t.sign_status), 0)),
           16, '0') AS digest,
       CASE
         WHEN coalesce(trim(t.national_id), '') = '' THEN 'national_id is empty'
         WHEN coalesce(trim(t.last_name), '') = '' THEN 'last_name is empty'
         WHEN coalesce(trim(t.first_name), '') = '' THEN 'first_name is empty'
         WHEN translate(coalesce(trim(t.profession), ''), '0123456789', '9999999999') <> '99'
           THEN 'profession is not a 2-digit code'
         WHEN length(coalesce(trim(t.chip_serial), '')) NOT BETWEEN 8 AND 32
              OR trim(t.chip_serial) ~ '[^0-9A-Fa-f]'
           THEN 'chip_serial is not 8 to 32 hexadecimal digits'
         WHEN upper(trim(coalesce(t.card_type, ''))) NOT IN ('CPS', 'CPF', 'CPE', 'CPA')
           THEN 'card_type is not CPS, CPF, CPE or CPA'
         WHEN vi.d IS NULL AND NOT cps3_is_date(t.issued_on)
           THEN 'issued_on is not a YYYY-MM-DD date'
         WHEN ve.d IS NULL AND NOT cps3_is_date(t.expires_on)
           THEN 'expires_on is not a YYYY-MM-DD date'
         WHEN lower(trim(coalesce(t.card_status, '')))
              NOT IN ('active', 'suspended', 'revoked', 'expired')
           THEN 'card_status is not active, suspended, revoked or expired'
         WHEN coalesce(t.birth_date, '') <> '' AND vb.d IS NULL AND NOT cps3_is_date(t.birth_date)
           THEN 'birth_date is not a YYYY-MM-DD date'
         WHEN coalesce(t.auth_serial, '') <> '' AND (length(t.auth_serial) > 64
              OR t.auth_serial ~ '[^0-9A-Fa-f]'
              OR (va.d IS NULL AND NOT cps3_is_date(t.auth_not_after))
              OR lower(coalesce(t.auth_status, '')) NOT IN ('valid', 'revoked', 'expired'))
           THEN 'auth certificate: serial (hex), not_after (date) and status are required'
         WHEN coalesce(t.sign_serial, '') <> '' AND (length(t.sign_serial) > 64
              OR t.sign_serial ~ '[^0-9A-Fa-f]'
              OR (vs.d IS NULL AND NOT cps3_is_date(t.sign_not_after))
              OR lower(coalesce(t.sign_status, '')) NOT IN ('valid', 'revoked', 'expired'))
           THEN 'sign certificate: serial (hex), not_after (date) and status are required'
       END AS reason,
       trim(t.national_id) AS national_id, trim(t.last_name) AS last_name,
       trim(t.first_name) AS first_name,
       CASE WHEN vb.d IS NOT NULL OR cps3_is_date(t.birth_date) THEN t.birth_date::date
       END AS birth_date,
       trim(t.profession) AS profession, upper(trim(coalesce(t.departement, ''))) AS departement,
       upper(trim(t.card_type)) AS card_type,
       CASE WHEN vi.d IS NOT NULL OR cps3_is_date(t.issued_on) THEN t.issued_on::date
       END AS issued_on,
       CASE WHEN ve.d IS NOT NULL OR cps3_is_date(t.expires_on) THEN t.expires_on::date
       END AS expires_on,
       lower(trim(t.card_status)) AS status, h.id AS holder_id,
       coalesce(t.auth_issuer, '') AS auth_issuer,
       lower(ltrim(coalesce(t.auth_serial, ''), '0')) AS auth_serial,
       CASE WHEN va.d IS NOT NULL OR cps3_is_date(t.auth_not_after) THEN t.auth_not_after::date
       END AS auth_not_after,
       lower(coalesce(t.auth_status, '')) AS auth_status,
       coalesce(t.sign_issuer, '') AS sign_issuer,
       lower(ltrim(coalesce(t.sign_serial, ''), '0')) AS sign_serial,
       CASE WHEN vs.d IS NOT NULL OR cps3_is_date(t.sign_not_after) THEN t.sign_not_after::date
       END AS sign_not_after,
       lower(coalesce(t.sign_status, '')) AS sign_status,
       coalesce(t.auth_serial, '') <> '' AND ca.common_name IS NULL AS auth_external,
       coalesce(t.sign_serial, '') <> '' AND cs.common_name IS NULL AS sign_external
  FROM cps3_staging t
  LEFT JOIN cps3_valid_date vi ON vi.d = t.issued_on
  LEFT JOIN cps3_valid_date ve ON ve.d = t.expires_on
  LEFT JOIN cps3_valid_date vb ON vb.d = t.birth_date
  LEFT JOIN cps3_valid_date va ON va.d = t.auth_not_after
  LEFT JOIN cps3_valid_date vs ON vs.d = t.sign_not_after
  LEFT JOIN cms_holder h ON h.national_id = trim(t.national_id)
  LEFT JOIN (SELECT DISTINCT common_name FROM pki_certificateauthority) ca
         ON ca.common_name = substring(t.auth_issuer from 'CN=([^,]+)')
  LEFT JOIN (SELECT DISTINCT common_name FROM pki_certificateauthority) cs
         ON cs.common_name = substring(t.sign_issuer from 'CN=([^,]+)')
"""

# Chip serials on several readable rows of a bulk load, from its pending rows (all of the file).
_BULK_DUPLICATES = """
CREATE TEMP TABLE cps3_duplicates ON COMMIT DROP AS
SELECT serial_key AS chip_serial FROM cps3_pending WHERE reason IS NULL
 GROUP BY 1 HAVING count(*) > 1
"""

# The bulk insert: the values computed above, as they are (no cast, no join).
_BULK_INSERT = f"""
INSERT INTO cps3_cps3card ({_COLUMNS})
SELECT p.serial_key, p.national_id, p.last_name, p.first_name, p.birth_date, p.profession,
       p.departement, p.card_type, p.issued_on, p.expires_on, p.status, p.holder_id,
       p.auth_issuer, p.auth_serial, p.auth_not_after, p.auth_status, p.auth_external,
       p.sign_issuer, p.sign_serial, p.sign_not_after, p.sign_status, p.sign_external,
       p.digest, %(run)s, now()
  FROM cps3_pending p
 WHERE p.reason IS NULL
   AND NOT EXISTS (SELECT FROM cps3_duplicates d WHERE d.chip_serial = p.serial_key)
"""  # noqa: S608 - built from the constant pieces above

# An upsert by chip serial; xmax = 0 tells a row this statement inserted from one it updated.
# Only pending rows come here, and an update writes only when something differs.
_UPSERT = f"""
WITH up AS (
  INSERT INTO cps3_cps3card AS c ({_COLUMNS})
  {_SELECT}
  ON CONFLICT (chip_serial) DO UPDATE SET
         national_id = EXCLUDED.national_id, last_name = EXCLUDED.last_name,
         first_name = EXCLUDED.first_name, birth_date = EXCLUDED.birth_date,
         profession = EXCLUDED.profession, departement = EXCLUDED.departement,
         card_type = EXCLUDED.card_type, issued_on = EXCLUDED.issued_on,
         expires_on = EXCLUDED.expires_on, status = EXCLUDED.status,
         holder_id = EXCLUDED.holder_id,
         auth_issuer = EXCLUDED.auth_issuer, auth_serial = EXCLUDED.auth_serial,
         auth_not_after = EXCLUDED.auth_not_after, auth_status = EXCLUDED.auth_status,
         auth_external = EXCLUDED.auth_external, auth_certificate_id = NULL,
         sign_issuer = EXCLUDED.sign_issuer, sign_serial = EXCLUDED.sign_serial,
         sign_not_after = EXCLUDED.sign_not_after, sign_status = EXCLUDED.sign_status,
         sign_external = EXCLUDED.sign_external, sign_certificate_id = NULL,
         row_digest = EXCLUDED.row_digest, last_import_id = EXCLUDED.last_import_id,
         updated_at = EXCLUDED.updated_at
   WHERE c.row_digest IS DISTINCT FROM EXCLUDED.row_digest
  RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up
"""  # noqa: S608 - built from the constant pieces above

# Certificates of our CAs on the rows this import wrote: matched by issuer and serial (a number).
# ``{rows}``: the rows to look at (the rows written, when they are known, else a scan for them).
_MATCH = """
UPDATE cps3_cps3card c SET
       auth_certificate_id = CASE WHEN c.auth_serial <> '' AND NOT c.auth_external THEN (
         SELECT p.id FROM pki_certificate p JOIN pki_certificateauthority ca ON ca.id = p.issuer_id
          WHERE ca.common_name = substring(c.auth_issuer from 'CN=([^,]+)')
            AND p.serial = cps3_hex_numeric(c.auth_serial)) END,
       sign_certificate_id = CASE WHEN c.sign_serial <> '' AND NOT c.sign_external THEN (
         SELECT p.id FROM pki_certificate p JOIN pki_certificateauthority ca ON ca.id = p.issuer_id
          WHERE ca.common_name = substring(c.sign_issuer from 'CN=([^,]+)')
            AND p.serial = cps3_hex_numeric(c.sign_serial)) END
 WHERE {rows}
   AND ((c.auth_serial <> '' AND NOT c.auth_external)
        OR (c.sign_serial <> '' AND NOT c.sign_external))
"""
_ALL_WRITTEN = "c.last_import_id = %(run)s"
# Without a CA of ours no certificate is ours: nothing to match (and nothing matched before).
_ANY_CA = "SELECT EXISTS (SELECT FROM pki_certificateauthority)"
_KNOWN_WRITTEN = "c.id IN (SELECT id FROM cps3_written)"

# --- the exceptions report (docs/adr/0030) ---------------------------------------------------
# Each row has a scope, what it depends on: ``file``, a row of this file (rebuilt from each file);
# ``group``, the cards of one national identifier; ``card``, one card, the registry's holder it
# points to, our certificates it points to and the date. A full rebuild computes every scope over
# the whole inventory; an incremental one recomputes ``group`` and ``card`` rows only for what can
# have changed since the previous import, with the same statements restricted to those.
_INSERT_EXCEPTIONS = (
    "INSERT INTO cps3_cps3exception"
    " (scope, kind, line, chip_serial, national_id, detail, found_by_id)"
)

# The file's own faults, with their lines: rows that cannot be read, and the readable rows whose
# chip serial is on several rows. One pass over the file.
_FILE_EXCEPTIONS = f"""
{_INSERT_EXCEPTIONS}
SELECT 'file', CASE WHEN r.line IS NULL THEN 'duplicate_serial' ELSE 'invalid_row' END, s.line,
       CASE WHEN r.line IS NULL THEN upper(trim(s.chip_serial))
            ELSE coalesce(s.chip_serial, '') END,
       coalesce(s.national_id, ''),
       coalesce(r.reason, 'this chip serial is on several rows of the file'), %(run)s
  FROM cps3_staging s
  LEFT JOIN cps3_pending r ON r.line = s.line AND r.reason IS NOT NULL
 WHERE r.line IS NOT NULL
    OR upper(trim(s.chip_serial)) IN (SELECT chip_serial FROM cps3_duplicates)
"""  # noqa: S608 - constant pieces

# Per national identifier with several cards: several active cards, different identities.
# ``{cards}``: where its cards are read; ``{groups}``: which identifiers (a condition on c).
_GROUP_EXCEPTIONS = f"""
{_INSERT_EXCEPTIONS}
SELECT 'group', x.kind, NULL, coalesce(g.serials, ''), g.national_id, x.detail, %(run)s
  FROM (SELECT c.national_id,
               string_agg(c.chip_serial, ' ' ORDER BY c.chip_serial)
                 FILTER (WHERE c.status = 'active') AS serials,
               count(*) FILTER (WHERE c.status = 'active') AS active,
               min(upper(c.last_name)) <> max(upper(c.last_name))
                 OR min(upper(c.first_name)) <> max(upper(c.first_name))
                 OR min(c.birth_date) <> max(c.birth_date) AS split
          FROM {{cards}} c
         WHERE {{groups}}
         GROUP BY c.national_id) g
  CROSS JOIN LATERAL (VALUES
    ('several_active', g.active > 1, format('%%s active CPS3 cards', g.active)),
    ('identity_conflict', g.split, 'the export gives this national identifier '
                                   'different names or birth dates on different cards')
  ) AS x(kind, applies, detail)
 WHERE x.applies
"""  # noqa: S608 - constant pieces
# Every national identifier with several cards: found by a narrow aggregate over the 32-bit hash
# of the identifier (cheaper to group than the text; a collision only adds identifiers with one
# card, which show nothing).
_ALL_GROUPS = """hashtext(c.national_id) IN (
  SELECT hashtext(national_id) FROM cps3_cps3card GROUP BY 1 HAVING count(*) > 1)"""
_SOME_GROUPS = "c.national_id IN (SELECT national_id FROM cps3_groups)"

# Per card: its holder (unknown, or another identity), its state and end date against today, and
# each certificate from our CAs against our PKI. One pass over the cards ``{cards}`` selects; only
# the cards that show something are expanded. Names equal as stored are not compared again in
# capitals (most are: upper() on every name was a large part of the pass).
_CARD_EXCEPTIONS = f"""
{_INSERT_EXCEPTIONS}
SELECT 'card', x.kind, NULL, f.chip_serial, f.national_id, x.detail, %(run)s
  FROM (SELECT c.chip_serial, c.national_id, c.last_name, c.first_name, c.status, c.expires_on,
               c.holder_id, h.last_name AS h_last_name, h.first_name AS h_first_name,
               c.auth_serial, c.auth_issuer, c.auth_status, c.auth_not_after, c.auth_external,
               c.auth_certificate_id, c.sign_serial, c.sign_issuer, c.sign_status,
               c.sign_not_after, c.sign_external, c.sign_certificate_id
          FROM cps3_cps3card c LEFT JOIN cms_holder h ON h.id = c.holder_id
         WHERE {{cards}}
           AND (c.holder_id IS NULL OR c.status IN ('revoked', 'expired')
                OR c.expires_on < %(today)s::date
                OR (h.last_name <> c.last_name AND upper(h.last_name) <> upper(c.last_name))
                OR (h.first_name <> c.first_name
                    AND upper(h.first_name) <> upper(c.first_name))
                OR (c.auth_serial <> '' AND NOT c.auth_external)
                OR (c.sign_serial <> '' AND NOT c.sign_external))) f
  LEFT JOIN pki_certificate pa ON pa.id = f.auth_certificate_id
  LEFT JOIN pki_certificate ps ON ps.id = f.sign_certificate_id
  CROSS JOIN LATERAL (VALUES
    ('holder_unknown', f.holder_id IS NULL,
     'no holder with this national identifier in the registry'),
    ('identity_conflict', upper(f.h_last_name) <> upper(f.last_name)
                          OR upper(f.h_first_name) <> upper(f.first_name),
     format('registry: %%s %%s; export: %%s %%s',
            f.h_last_name, f.h_first_name, f.last_name, f.first_name)),
    ('card_revoked', f.status = 'revoked', 'the export lists it as revoked'),
    ('card_expired', f.status <> 'revoked' AND (f.status = 'expired'
                                              OR f.expires_on < %(today)s::date),
     format('expired on %%s', f.expires_on)),
    (CASE WHEN pa.id IS NULL THEN 'certificate_unknown' ELSE 'certificate_mismatch' END,
     NOT f.auth_external AND f.auth_serial <> ''
       AND (pa.id IS NULL OR f.auth_not_after <> pa.not_after::date
            OR (f.auth_status = 'revoked') <> (pa.status = 'revoked')),
     CASE WHEN pa.id IS NULL
       THEN format('auth certificate %%s from %%s is not in our PKI', f.auth_serial, f.auth_issuer)
       ELSE format('auth certificate %%s: export says %%s until %%s, our PKI %%s until %%s',
                   f.auth_serial, f.auth_status, f.auth_not_after, pa.status, pa.not_after::date)
     END),
    (CASE WHEN ps.id IS NULL THEN 'certificate_unknown' ELSE 'certificate_mismatch' END,
     NOT f.sign_external AND f.sign_serial <> ''
       AND (ps.id IS NULL OR f.sign_not_after <> ps.not_after::date
            OR (f.sign_status = 'revoked') <> (ps.status = 'revoked')),
     CASE WHEN ps.id IS NULL
       THEN format('sign certificate %%s from %%s is not in our PKI', f.sign_serial, f.sign_issuer)
       ELSE format('sign certificate %%s: export says %%s until %%s, our PKI %%s until %%s',
                   f.sign_serial, f.sign_status, f.sign_not_after, ps.status, ps.not_after::date)
     END)
  ) AS x(kind, applies, detail)
 WHERE x.applies
"""  # noqa: S608 - constant pieces

# What the incremental rebuild looks at. Rows of the registry and of our PKI written since the
# previous report read them: by a transaction that was still running, or not yet started, when
# that report took its snapshot, i.e. whose id is at or after that snapshot's oldest running
# transaction (``report_horizon``). ``age(xmin)`` and ``age(horizon)`` count back from the same
# transaction, so the test holds while the horizon is less than 2^31 transactions back (checked).
_SINCE = "age({table}.xmin) <= age((%(horizon)s %% 4294967296)::text::xid)"

# The cards this import wrote: found through the file's differing rows (by chip serial), and
# checked against the upsert's count before anything relies on them.
_WRITTEN = """
CREATE TEMP TABLE cps3_written ON COMMIT DROP AS
SELECT DISTINCT c.id, c.national_id
  FROM cps3_pending p JOIN cps3_cps3card c ON c.chip_serial = p.serial_key
 WHERE p.reason IS NULL AND c.last_import_id = %(run)s
"""

# Holders registered since the card was imported (their cards are reported again). The few cards
# without a holder (a partial index) each look their identifier up in the registry's unique index
# (a subquery per card, which the planner cannot turn into a hash join reading the registry whole).
_HOLDERS = """
WITH linked AS (
  UPDATE cps3_cps3card c
     SET holder_id = (SELECT h.id FROM cms_holder h WHERE h.national_id = c.national_id)
   WHERE c.holder_id IS NULL
     AND (SELECT h.id FROM cms_holder h WHERE h.national_id = c.national_id) IS NOT NULL
  RETURNING c.id
)
INSERT INTO cps3_affected SELECT id FROM linked
"""

# The cards of holders written in the registry since the previous report.
_HOLDERS_CHANGED = f"""
INSERT INTO cps3_affected
SELECT c.id FROM cps3_cps3card c
 WHERE c.holder_id IN (SELECT h.id FROM cms_holder h WHERE {_SINCE.format(table="h")})
"""  # noqa: S608 - constant pieces

_CERTIFICATES_CHANGED = f"""
CREATE TEMP TABLE cps3_certificates ON COMMIT DROP AS
SELECT p.id FROM pki_certificate p WHERE {_SINCE.format(table="p")}
"""  # noqa: S608 - constant pieces

# The national identifiers whose group can have changed: those of the cards written (a card that
# joined, left or changed), and those the report shows now (a card may have left them: its
# previous national identifier is not known any more; a group that showed nothing cannot start to
# show something by losing a card).
_GROUPS = """
CREATE TEMP TABLE cps3_groups ON COMMIT DROP AS
SELECT national_id FROM cps3_written
 UNION SELECT national_id FROM cps3_cps3exception WHERE scope = 'group'
"""

# One pass over the inventory, only when something needs it: the cards whose end date passed since
# the previous report's day, the cards pointing to a certificate of ours written since, and every
# card of the groups to recompute.
_SCAN = """
CREATE TEMP TABLE cps3_scan ON COMMIT DROP AS
SELECT c.id, c.national_id, c.chip_serial, c.status, c.last_name, c.first_name, c.birth_date
  FROM cps3_cps3card c
 WHERE (c.expires_on >= %(since)s::date AND c.expires_on < %(today)s::date)
    OR c.auth_certificate_id IN (SELECT id FROM cps3_certificates)
    OR c.sign_certificate_id IN (SELECT id FROM cps3_certificates)
    OR c.national_id IN (SELECT national_id FROM cps3_groups)
"""

# The inventory's secondary indexes and its unique and foreign-key constraints (the primary key
# stays: wave members refer to it), as the statements that recreate them.
_REBUILDABLE = """
SELECT format('ALTER TABLE cps3_cps3card DROP CONSTRAINT %%I', conname),
       format('ALTER TABLE cps3_cps3card ADD CONSTRAINT %%I %%s', conname,
              pg_get_constraintdef(oid))
  FROM pg_constraint
 WHERE conrelid = 'cps3_cps3card'::regclass AND contype IN ('u', 'f')
UNION ALL
SELECT format('DROP INDEX %%s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid)
  FROM pg_index i
 WHERE i.indrelid = 'cps3_cps3card'::regclass AND NOT i.indisprimary
   AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
"""


class _Steps:
    """The reconciliation's statements, each timed into the log (the import's profile)."""

    def __init__(self, cursor: Any, params: dict[str, Any]) -> None:
        self.cursor = cursor
        self.params = params

    def run(self, name: str, sql: str) -> Any:
        started = time.perf_counter()
        self.cursor.execute(sql, self.params)
        logger.debug("cps3 import step %s: %.2f s", name, time.perf_counter() - started)
        return self.cursor


def _reconcile(run_id: int, *, rows: int | None = None) -> dict[str, int]:
    """``rows``: the staging table's row count when the caller knows it (counted otherwise)."""
    with connection.cursor() as cursor:
        step = _Steps(cursor, {"run": run_id})
        step.run("memory", f"SET LOCAL work_mem = '{WORK_MEM}'")
        step.run("memory", f"SET LOCAL maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
        # The row estimates over a fresh staging table are large: JIT would compile each statement
        # for seconds to save less than it costs (measured: 2.4 s of a 10 s insert).
        step.run("jit", "SET LOCAL jit = off")
        # Temporary tables an outer transaction (a test's) may still hold.
        step.run("drop", "DROP TABLE IF EXISTS cps3_pending, cps3_duplicates, cps3_issuers")
        if rows is None or rows < 0:
            rows = step.run("count", "SELECT count(*) FROM cps3_staging").fetchone()[0]
        bulk = (
            rows >= BULK_MIN_ROWS
            and not step.run("empty?", "SELECT EXISTS (SELECT FROM cps3_cps3card)").fetchone()[0]
        )
        if bulk:
            # One pass over the file, in parallel: the planner's default costs for starting
            # workers and passing rows to the leader would keep it serial (it does not count the
            # per-row checks); the defaults are back for the steps after.
            step.run("parallel", "SET LOCAL parallel_setup_cost = 0")
            step.run("parallel", "SET LOCAL parallel_tuple_cost = 0.001")
            step.run("pending", _BULK_PENDING)
            step.run("parallel", "SET LOCAL parallel_setup_cost TO DEFAULT")
            step.run("parallel", "SET LOCAL parallel_tuple_cost TO DEFAULT")
            # Statistics for the columns later steps join and filter on (all 25: 0.4 s more at
            # 400,000 rows).
            step.run("analyze pending", "ANALYZE cps3_pending (line, serial_key, reason)")
            step.run("duplicates", _BULK_DUPLICATES)
            step.run("analyze duplicates", "ANALYZE cps3_duplicates")
            rebuild = step.run("rebuildable", _REBUILDABLE).fetchall()
            for drop, _ in rebuild:
                step.run("drop index", drop)
            inserted, updated = step.run("insert", _BULK_INSERT).rowcount, 0
            for drop, create in rebuild:
                step.run(f"rebuild {drop.split()[-1]}", create)
        else:
            step.run("pending", _PENDING)
            step.run("analyze pending", "ANALYZE cps3_pending")
            step.run("duplicates", _DUPLICATES)
            step.run("analyze duplicates", "ANALYZE cps3_duplicates")
            step.run("issuers", _ISSUERS)
            step.run("analyze issuers", "ANALYZE cps3_issuers")
            inserted, updated = step.run("upsert", _UPSERT).fetchone()
        counts = _report(step, run_id=run_id, written=inserted + updated, bulk=bulk)
    return {
        "rows": rows,
        "inserted": inserted,
        "updated": updated + counts["linked"],
        "unchanged": rows - counts["rejected"] - inserted - updated - counts["linked"],
        "rejected": counts["rejected"],
        "exceptions": counts["exceptions"],
    }


# The day the report is computed for (cards that ended before it are expired): the transaction's
# date. An SQL expression (tests move it).
TODAY = "current_date"
# False: every import rebuilds the whole report (what an incremental one is compared with).
INCREMENTAL = True
# An incremental report that would redo more than this share of the inventory's cards (as the
# planner's statistics count them, when they exist) is replaced by a full rebuild, which then costs
# less.
INCREMENTAL_MAX_SHARE = 0.2
# ``age()`` orders transaction ids less than 2^31 apart; a horizon further back than this (or in
# the future: another cluster) cannot be trusted, and the report is rebuilt in full.
_HORIZON_MAX_AGE = 1 << 30


def _report(step: _Steps, *, run_id: int, written: int, bulk: bool) -> dict[str, int]:
    """The end of the reconciliation: holders registered since, our certificates, then the
    exceptions report, incrementally from the previous import's when that can be proved to give
    the same rows as a full rebuild (docs/adr/0030), in full otherwise."""
    today, horizon, current, cluster = step.run(
        "horizon",
        f"SELECT {TODAY}, pg_snapshot_xmin(pg_current_snapshot())::text::bigint,"
        " pg_current_xact_id()::text::bigint, (pg_control_system()).system_identifier",
    ).fetchone()
    previous = step.run(
        "previous report",
        "SELECT report_on, report_horizon, report_cluster FROM cps3_cps3import"
        " WHERE id < %(run)s ORDER BY id DESC LIMIT 1",
    ).fetchone()
    since_on, since_horizon, since_cluster = previous if previous else (None, None, None)
    incremental = (
        INCREMENTAL
        and not bulk
        and since_on is not None
        and since_horizon is not None
        and since_cluster == cluster
        and since_on <= today
        and 0 <= current - since_horizon < _HORIZON_MAX_AGE
    )
    step.params.update(today=today, horizon=since_horizon, since=since_on)
    step.run(
        "drop",
        "DROP TABLE IF EXISTS cps3_written, cps3_affected, cps3_certificates, cps3_groups,"
        " cps3_scan",
    )
    step.run("affected", "CREATE TEMP TABLE cps3_affected (id bigint) ON COMMIT DROP")
    if incremental:
        # Every card this import wrote must be found, or nothing incremental is proved.
        incremental = step.run("written", _WRITTEN).rowcount == written
    linked = step.run("holders", _HOLDERS).rowcount
    if written and step.run("our CAs?", _ANY_CA).fetchone()[0]:
        rows = _KNOWN_WRITTEN if incremental else _ALL_WRITTEN
        step.run("match certificates", _MATCH.format(rows=rows))
    if incremental:
        incremental = _affected(step, written=written, later_day=since_on < today)
    if incremental:
        step.run(
            "clear exceptions",
            "DELETE FROM cps3_cps3exception WHERE scope = 'file'"
            " OR (scope = 'group' AND national_id IN (SELECT national_id FROM cps3_groups))"
            " OR (scope = 'card' AND chip_serial IN (SELECT c.chip_serial FROM cps3_cps3card c"
            " WHERE c.id IN (SELECT id FROM cps3_affected)))",
        )
        step.run("exceptions file", _FILE_EXCEPTIONS)
        if written:
            step.run(
                "exceptions groups",
                _GROUP_EXCEPTIONS.format(cards="cps3_scan", groups=_SOME_GROUPS),
            )
        cards = "c.id IN (SELECT id FROM cps3_affected)"
        step.run("exceptions cards", _CARD_EXCEPTIONS.format(cards=cards))
    else:
        step.run("clear exceptions", "DELETE FROM cps3_cps3exception")
        step.run("exceptions file", _FILE_EXCEPTIONS)
        # Grouping 1.5 million 32-bit hashes: sorting them costs less than a hash table of 1.5
        # million entries (measured: 0.9 s against 2.2 s), which the planner prefers.
        hashagg = step.run("hashagg?", "SELECT current_setting('enable_hashagg')").fetchone()[0]
        step.run("hashagg off", "SET LOCAL enable_hashagg = off")
        step.run(
            "exceptions groups",
            _GROUP_EXCEPTIONS.format(cards="cps3_cps3card", groups=_ALL_GROUPS),
        )
        step.params.update(hashagg=hashagg)
        step.run("hashagg", "SELECT set_config('enable_hashagg', %(hashagg)s, true)")
        step.run("exceptions cards", _CARD_EXCEPTIONS.format(cards="true"))
    exceptions, rejected = step.run(
        "count exceptions",
        "SELECT count(*), count(*) FILTER (WHERE scope = 'file') FROM cps3_cps3exception",
    ).fetchone()
    step.params.update(horizon=horizon, cluster=cluster, incremental=incremental)
    step.run(
        "record report",
        "UPDATE cps3_cps3import SET report_on = %(today)s, report_horizon = %(horizon)s,"
        " report_cluster = %(cluster)s, report_incremental = %(incremental)s WHERE id = %(run)s",
    )
    logger.debug("cps3 import report: %s", "incremental" if incremental else "full rebuild")
    return {"linked": linked, "exceptions": exceptions, "rejected": rejected}


def _affected(step: _Steps, *, written: int, later_day: bool) -> bool:
    """Gather the cards (``cps3_affected``) and national identifiers (``cps3_groups``) whose
    exceptions can have changed since the previous report; False when they are so many that a full
    rebuild costs less."""
    step.run("holders changed", _HOLDERS_CHANGED)
    certificates = step.run("certificates changed", _CERTIFICATES_CHANGED).rowcount
    step.run("analyze certificates", "ANALYZE cps3_certificates")
    if written:
        step.run("groups", _GROUPS)
    else:  # no card written: no group changed
        step.run("groups", "CREATE TEMP TABLE cps3_groups (national_id text) ON COMMIT DROP")
    step.run("analyze groups", "ANALYZE cps3_groups")
    if written or later_day or certificates:
        step.run("scan", _SCAN)
        step.run("affected scan", "INSERT INTO cps3_affected SELECT id FROM cps3_scan")
    if written:
        step.run("affected written", "INSERT INTO cps3_affected SELECT id FROM cps3_written")
    step.run("analyze affected", "ANALYZE cps3_affected")
    affected, cards = step.run(
        "affected count",
        "SELECT (SELECT count(DISTINCT id) FROM cps3_affected),"
        # The planner's own estimate: the statistics' rows per page times the table's pages now,
        # so statistics taken when the table was smaller do not shrink it; -1 without statistics.
        " (SELECT CASE WHEN relpages > 0 THEN reltuples / relpages"
        " * (pg_relation_size(oid) / current_setting('block_size')::int) ELSE -1 END"
        " FROM pg_class WHERE oid = 'cps3_cps3card'::regclass)",
    ).fetchone()
    if cards < 0 or affected <= INCREMENTAL_MAX_SHARE * cards:
        return True
    # Over the share by the statistics, which may be out of date (a table that grew since they
    # were taken): the cards counted before a full rebuild is chosen.
    cards = step.run("cards count", "SELECT count(*) FROM cps3_cps3card").fetchone()[0]
    return bool(affected <= INCREMENTAL_MAX_SHARE * cards)


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
