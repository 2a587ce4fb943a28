"""Import of an RPPS-style directory extract (CSV): idempotent upsert by national identifier.

Each row is validated on its own; rejected rows are reported with their line and reasons, the
valid ones are created or updated in one transaction, and the import writes one audit event (file
digest and counts). Importing the same file twice changes nothing the second time.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from cms.callers import Caller
from cms.choices import HolderStatus
from cms.models import Holder
from cms.services.holder_events import holder_status_consequences
from cms.services.holders import HolderData, _require_write, holder_data_clean
from core.audit import audit_event_create
from core.errors import ApplicationError, BadInput

# Column headers accepted for each field: the RPPS extract's French names and plain ones.
COLUMNS: dict[str, tuple[str, ...]] = {
    "national_id": ("identification nationale pp", "national_id", "idnat_ps"),
    "last_name": ("nom d'exercice", "nom", "last_name"),
    "first_name": ("prénom d'exercice", "prenom d'exercice", "prénom", "prenom", "first_name"),
    "profession": ("code profession", "profession"),
    "card_type": ("type de carte", "card_type"),
    "status": ("statut", "status"),
    "address_line1": ("adresse", "libellé voie (coord. structure)", "address_line1"),
    "address_line2": ("complément", "mention distribution (coord. structure)", "address_line2"),
    "postal_code": ("code postal (coord. structure)", "code postal", "postal_code"),
    "city": ("libellé commune (coord. structure)", "commune", "city"),
    "country": ("country",),  # ISO alpha-2; the RPPS extract's INSEE codes (99100) are not read
}
PROGRESS_EVERY = 200
REQUIRED = ("national_id", "last_name", "first_name", "profession")
STATUS_ALIASES = {
    "actif": "active",
    "cessation": "left_profession",
    "radié": "struck_off",
    "radie": "struck_off",
    "décédé": "deceased",
    "decede": "deceased",
}
_UPDATABLE = [
    "last_name",
    "first_name",
    "profession",
    "card_type",
    "status",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "country",
    "departement",
]


@dataclass(frozen=True, slots=True)
class RejectedRow:
    line: int
    national_id: str
    errors: dict[str, str]


@dataclass(slots=True)
class ImportReport:
    sha256: str
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    # Holders no longer active: their cards revoked, their open requests cancelled.
    cards_revoked: int = 0
    requests_cancelled: int = 0
    # which holders changed, for the audit event (issue 11 §7): ids, and the fields per update
    created_ids: list[str] = field(default_factory=list)
    updated_fields: dict[str, list[str]] = field(default_factory=dict)


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput("The file is not UTF-8 text.") from None


def _header_map(header: list[str]) -> dict[str, int]:
    normalised = [h.strip().lower() for h in header]
    found: dict[str, int] = {}
    for name, aliases in COLUMNS.items():
        for alias in aliases:
            if alias in normalised:
                found[name] = normalised.index(alias)
                break
    missing = [name for name in REQUIRED if name not in found]
    if missing:
        raise BadInput(
            "The file's header lacks required columns.",
            extra={"missing": missing, "accepted": {m: list(COLUMNS[m]) for m in missing}},
        )
    return found


def _rows(text: str) -> tuple[dict[str, int], Iterable[tuple[int, list[str]]]]:
    first_line = text.split("\n", 1)[0]
    delimiter = max("|;,\t", key=first_line.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise BadInput("The file is empty.") from None
    except csv.Error as exc:
        raise _unreadable(reader.line_num, exc) from None
    columns = _header_map(header)

    def rows() -> Iterable[tuple[int, list[str]]]:
        try:
            for row in reader:
                if any(c.strip() for c in row):
                    yield reader.line_num, row
        except csv.Error as exc:  # a field over the csv module's limit, a NUL byte...
            raise _unreadable(reader.line_num, exc) from None

    return columns, rows()


def _unreadable(line: int, exc: csv.Error) -> BadInput:
    return BadInput(
        "The file cannot be read as CSV; nothing was imported.",
        extra={"line": line, "reason": str(exc)},
    )


def _row_data(row: list[str], columns: dict[str, int]) -> HolderData:
    values = {name: (row[i] if i < len(row) else "") for name, i in columns.items()}
    if "status" in values:
        status = values["status"].strip().lower()
        values["status"] = STATUS_ALIASES.get(status, status) or "active"
    if "card_type" in values and not values["card_type"].strip():
        values["card_type"] = "CPS"
    return HolderData(**values)


def holder_import(
    *,
    content: bytes,
    caller: Caller,
    chunk_size: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Upsert holders from a directory extract; see the module docstring. ``progress`` is told
    the number of rows read so far, every ``PROGRESS_EVERY`` rows and at the end."""
    _require_write(caller)
    report = ImportReport(sha256=hashlib.sha256(content).hexdigest())
    columns, rows = _rows(_decode(content))
    valid: dict[str, tuple[int, dict[str, str]]] = {}
    for line, row in rows:
        report.total += 1
        if progress is not None and report.total % PROGRESS_EVERY == 0:
            progress(report.total)
        try:
            values = holder_data_clean(_row_data(row, columns))
        except ApplicationError as exc:
            nid = row[columns["national_id"]] if columns["national_id"] < len(row) else ""
            report.rejected.append(RejectedRow(line, nid.strip(), exc.extra.get("fields", {})))
            continue
        nid = values["national_id"]
        if nid in valid:
            first = valid[nid][0]
            report.rejected.append(
                RejectedRow(line, nid, {"national_id": f"duplicate of line {first} in this file"})
            )
            continue
        valid[nid] = (line, values)
    with transaction.atomic():
        ids = list(valid)
        for start in range(0, len(ids), chunk_size):
            left = _upsert_chunk([valid[i][1] for i in ids[start : start + chunk_size]], report)
            for holder in left:
                done = holder_status_consequences(holder=holder, caller=caller)
                report.cards_revoked += len(done.revoked_cards)
                report.requests_cancelled += len(done.cancelled_requests)
        if report.created or report.updated:
            audit_event_create(
                actor=caller.actor,
                action="holder.import",
                object_type="holder_import",
                object_id=report.sha256,
                details={
                    "rows": report.total,
                    "created": report.created,
                    "updated": report.updated,
                    "unchanged": report.unchanged,
                    "rejected": len(report.rejected),
                    "cards_revoked": report.cards_revoked,
                    "requests_cancelled": report.requests_cancelled,
                    "created_ids": report.created_ids,
                    "updated_ids": list(report.updated_fields),
                    "updated_fields": report.updated_fields,
                },
            )
    if progress is not None:
        progress(report.total)
    return report


def _upsert_chunk(chunk: list[dict[str, str]], report: ImportReport) -> list[Holder]:
    """Create and update one chunk; returns the holders whose status changed away from active
    (or who are registered inactive with cards, which a new holder never has)."""
    existing = {
        h.national_id: h
        for h in Holder.objects.select_for_update().filter(
            national_id__in=[v["national_id"] for v in chunk]
        )
    }
    new: list[Holder] = []
    changed: list[Holder] = []
    left: list[Holder] = []
    diffs: list[list[str]] = []
    now = timezone.now()
    for values in chunk:
        holder = existing.get(values["national_id"])
        if holder is None:
            new.append(Holder(**values))
            continue
        diff = [k for k in _UPDATABLE if getattr(holder, k) != values[k]]
        if not diff:
            report.unchanged += 1
            continue
        if "status" in diff and values["status"] != HolderStatus.ACTIVE:
            left.append(holder)
        for k in diff:
            setattr(holder, k, values[k])
        holder.updated_at = now
        changed.append(holder)
        diffs.append(diff)
    # A holder registered concurrently makes this fail on the unique national_id: the whole
    # import rolls back and can be run again.
    Holder.objects.bulk_create(new, batch_size=2000)
    if changed:
        Holder.objects.bulk_update(changed, [*_UPDATABLE, "updated_at"], batch_size=1000)
    report.created += len(new)
    report.updated += len(changed)
    report.created_ids += [str(h.pk) for h in new]
    report.updated_fields.update({str(h.pk): d for h, d in zip(changed, diffs, strict=True)})
    return left
