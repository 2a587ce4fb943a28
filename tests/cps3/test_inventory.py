"""The CPS3 inventory import: COPY into staging, set-based reconciliation, exceptions report."""

from __future__ import annotations

import csv
import io
from collections import Counter
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from cms.callers import Caller
from cms.services.holder_import import holder_import
from core.actors import Actor
from core.errors import BadInput
from core.models import AuditEvent
from cps3 import inventory
from cps3.generator import Export, Rates, csv_bytes, export_rows, holder_rows, national_id
from cps3.inventory import COLUMNS, cps3_import, exceptions_csv
from cps3.models import Cps3Card, Cps3Exception

pytestmark = pytest.mark.django_db

RATES = Rates(
    holder_unknown=0.05,
    identity_conflict=0.04,
    duplicate_serial=0.03,
    several_active=0.03,
    card_revoked=0.04,
    card_expired=0.04,
    invalid_row=0.03,
)


def _import(content: bytes, **kwargs: Any) -> Any:
    return cps3_import(
        stream=io.BytesIO(content),
        filename="export.csv",
        size=len(content),
        actor=Actor.system("tests"),
        **kwargs,
    )


def _registry(count: int, rates: Rates = RATES) -> None:
    holder_import(
        content=csv_bytes(holder_rows(count, seed=7, rates=rates)),
        caller=Caller.for_system("tests"),
    )


def _row(**values: str) -> list[str]:
    base = {
        "national_id": national_id(0),
        "last_name": "DUPONT",
        "first_name": "Jean",
        "birth_date": "1970-01-31",
        "profession": "10",
        "departement": "75",
        "chip_serial": "8025000000000001",
        "card_type": "CPS",
        "issued_on": "2024-01-01",
        "expires_on": "2029-01-01",
        "card_status": "active",
    }
    base.update(values)
    return [base.get(c, "") for c in COLUMNS]


def test_a_generated_export_reports_each_anomaly_it_holds() -> None:
    _registry(400)
    report = Export()
    content = csv_bytes(export_rows(400, seed=7, rates=RATES, report=report))
    result = _import(content)

    kinds = Counter(Cps3Exception.objects.values_list("kind", flat=True))
    made = report.anomalies
    assert result.rows == report.records
    assert kinds["holder_unknown"] == made["holder_unknown"]
    assert kinds["invalid_row"] == made["invalid_row"]
    assert kinds["duplicate_serial"] == 2 * made["duplicate_serial"]  # both rows reported
    assert kinds["several_active"] == made["several_active"]
    assert kinds["card_revoked"] == made["card_revoked"]
    # An identity conflict is reported against the registry (and a duplicate row's other name
    # is not: that row was left out).
    assert kinds["identity_conflict"] == made["identity_conflict"]
    assert kinds["card_expired"] >= made["card_expired"]
    assert result.rejected == made["invalid_row"] + 2 * made["duplicate_serial"]
    assert Cps3Card.objects.count() == result.inserted == result.rows - result.rejected
    # Every certificate comes from the IGC-Santé CAs, none of them ours: recorded as external.
    cards = Cps3Card.objects.all()
    assert all(c.auth_external and c.sign_external for c in cards)
    assert not cards.filter(auth_certificate__isnull=False).exists()


def test_the_same_file_twice_changes_nothing_and_a_newer_file_updates() -> None:
    _registry(120)
    content = csv_bytes(export_rows(120, seed=7, rates=RATES))
    first = _import(content)
    cards = {c.chip_serial: (c.updated_at, c.status) for c in Cps3Card.objects.all()}
    exceptions = sorted(Cps3Exception.objects.values_list("kind", "chip_serial", "detail"))

    again = _import(content)
    assert (again.inserted, again.updated) == (0, 0)
    assert again.unchanged == first.inserted
    assert {c.chip_serial: (c.updated_at, c.status) for c in Cps3Card.objects.all()} == cards
    assert sorted(Cps3Exception.objects.values_list("kind", "chip_serial", "detail")) == exceptions

    rows = list(csv.reader(io.StringIO(content.decode())))
    target = next(r for r in rows[1:] if r[10] == "active")
    target[10] = "suspended"
    newer = _import(csv_bytes(iter(rows)))
    assert (newer.inserted, newer.updated) == (0, 1)
    assert Cps3Card.objects.get(chip_serial=target[6]).status == "suspended"
    assert AuditEvent.objects.filter(action="cps3.import").count() == 3


def test_bom_crlf_and_quoted_fields_are_read() -> None:
    _registry(1, Rates(**dict.fromkeys(Rates.__dataclass_fields__, 0.0)))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(COLUMNS)
    writer.writerow(_row(last_name='DUPONT, dit "le Grand"', first_name="Jean\nPierre"))
    result = _import(b"\xef\xbb\xbf" + out.getvalue().encode())
    assert (result.rows, result.inserted, result.rejected) == (1, 1, 0)
    card = Cps3Card.objects.get()
    assert card.last_name == 'DUPONT, dit "le Grand"' and card.first_name == "Jean\nPierre"


def test_latin1_is_refused_unless_declared_and_nothing_is_imported() -> None:
    text = ",".join(COLUMNS) + "\n" + ",".join(_row(first_name="Hélène")) + "\n"
    with pytest.raises(BadInput) as refused:
        _import(text.encode("latin-1"))
    assert "Nothing was imported" in refused.value.message, refused.value.message
    assert "line 2" in refused.value.message, refused.value.message
    assert not Cps3Card.objects.exists()
    assert _import(text.encode("latin-1"), encoding="latin-1").inserted == 1
    assert Cps3Card.objects.get().first_name == "Hélène"


def test_a_bad_header_or_broken_quoting_imports_nothing() -> None:
    with pytest.raises(BadInput, match="header") as bad:
        _import(b"national_id,name\n1,2\n")
    assert "chip_serial" in bad.value.extra["missing"] and bad.value.extra["unknown"] == ["name"]
    with pytest.raises(BadInput, match="empty"):
        _import(b"")
    broken = ",".join(COLUMNS) + "\n" + ",".join(_row()) + "\n" + '"unterminated,' + "\n"
    with pytest.raises(BadInput, match="could not be read"):
        _import(broken.encode())
    assert not Cps3Card.objects.exists()


def test_malformed_rows_are_reported_with_their_line_and_reason() -> None:
    rows = [
        list(COLUMNS),
        _row(chip_serial="8025000000000001"),
        _row(chip_serial="8025000000000002", expires_on="2029-02-30"),
        _row(chip_serial="not-hex"),
        _row(chip_serial="8025000000000003", card_status="lost"),
        _row(chip_serial="8025000000000004", auth_serial="12ab"),
    ]
    result = _import(csv_bytes(iter(rows)))
    assert (result.inserted, result.rejected) == (1, 4)
    invalid = dict(Cps3Exception.objects.filter(kind="invalid_row").values_list("line", "detail"))
    assert invalid == {
        3: "expires_on is not a YYYY-MM-DD date",
        4: "chip_serial is not 8 to 32 hexadecimal digits",
        5: "card_status is not active, suspended, revoked or expired",
        6: "auth certificate: serial (hex), not_after (date) and status are required",
    }


@pytest.mark.parametrize("bulk", [False, True], ids=["upsert", "bulk"])
def test_certificates_of_our_ca_are_matched_and_checked(
    authority: Any, holder_key: Any, bulk: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pki import services

    monkeypatch.setattr(inventory, "BULK_MIN_ROWS", 1 if bulk else 10**9)
    from pki.domain.names import Holder as CertificateHolder

    holder = CertificateHolder(
        national_id=national_id(0),
        surname="DUPONT",
        given_name="JEAN",
        title="Médecin",
        card_serial="0000000001",
        profession_code=10,
        email="jean.dupont@example.org",
    )
    ours = services.certificate_issue(
        authority=authority.short_name,
        profile="cps_auth",
        actor=Actor.system("tests"),
        public_key=holder_key.public_key(),
        holder=holder,
    )
    issuer = f"CN={authority.common_name},O=ASIP-SANTE,C=FR"
    not_after = ours.not_after.date().isoformat()
    serial = f"{int(ours.serial):X}"
    rows = [
        list(COLUMNS),
        _row(
            chip_serial="8025000000000001",
            auth_issuer=issuer,
            auth_serial=serial,
            auth_not_after=not_after,
            auth_status="valid",
            sign_issuer=issuer,
            sign_serial="0BADC0DE",
            sign_not_after=not_after,
            sign_status="valid",
        ),
        _row(
            chip_serial="8025000000000002",
            auth_issuer=issuer,
            auth_serial="00" + serial.lower(),
            auth_not_after="2020-01-01",
            auth_status="revoked",
        ),
    ]
    if bulk:
        # The bulk load re-adds the inventory's foreign keys, which PostgreSQL refuses while the
        # test's transaction still holds the deferred checks of the certificate issued above (an
        # import runs in its own transaction).
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    _import(csv_bytes(iter(rows)))
    matched = Cps3Card.objects.get(chip_serial="8025000000000001")
    assert matched.auth_certificate_id == ours.pk and not matched.auth_external
    assert matched.sign_certificate_id is None and not matched.sign_external
    details = dict(
        Cps3Exception.objects.filter(kind__startswith="certificate").values_list("kind", "detail")
    )
    assert "sign certificate badc0de" in details["certificate_unknown"]
    assert "export says revoked until 2020-01-01" in details["certificate_mismatch"]


def test_the_command_shows_progress_and_writes_the_report(tmp_path: Any) -> None:
    _registry(50)
    path = tmp_path / "export.csv"
    path.write_bytes(csv_bytes(export_rows(50, seed=7, rates=RATES)))
    out, err = io.StringIO(), io.StringIO()
    call_command("import_cps3", str(path), stdout=out, stderr=err)
    assert "rows" in out.getvalue() and "exceptions" in out.getvalue()
    report = tmp_path / "exceptions.csv"
    call_command("cps3_exceptions", output=str(report), stderr=io.StringIO())
    lines = list(csv.reader(report.open(encoding="utf-8")))
    assert lines[0] == ["kind", "reason", "line", "chip_serial", "national_id", "detail"]
    assert len(lines) - 1 == Cps3Exception.objects.count() > 0
    with pytest.raises(CommandError, match="header"):
        bad = tmp_path / "bad.csv"
        bad.write_text("x\n1\n")
        call_command("import_cps3", str(bad), quiet_progress=True, stdout=io.StringIO())
    buffer = io.StringIO()
    assert exceptions_csv(buffer) == Cps3Exception.objects.count()


def _inventory() -> dict[str, tuple[Any, ...]]:
    """The inventory's content (not its ids, dates of writing or provenance)."""
    skip = {"id", "updated_at", "last_import"}
    fields = [f.attname for f in Cps3Card._meta.concrete_fields if f.name not in skip]
    return {row[0]: row for row in Cps3Card.objects.values_list(*fields).order_by("chip_serial")}


def _report() -> list[tuple[Any, ...]]:
    return sorted(Cps3Exception.objects.values_list("kind", "line", "chip_serial", "detail"))


def _schema() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'cps3_cps3card'::regclass"
            " UNION ALL SELECT pg_get_indexdef(indexrelid) FROM pg_index"
            " WHERE indrelid = 'cps3_cps3card'::regclass"
        )
        return {row[0] for row in cursor.fetchall()}


def test_a_bulk_first_import_gives_what_the_upsert_gives_and_keeps_every_constraint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _registry(300)
    content = csv_bytes(export_rows(300, seed=7, rates=RATES))
    schema = _schema()
    assert any("FOREIGN KEY (holder_id)" in s for s in schema)
    assert any("UNIQUE (chip_serial)" in s for s in schema)

    monkeypatch.setattr(inventory, "BULK_MIN_ROWS", 1)  # the empty inventory: a bulk load
    bulk = _import(content)
    assert _schema() == schema  # indexes and constraints rebuilt, with their names
    cards, report = _inventory(), _report()

    Cps3Card.objects.all().delete()
    monkeypatch.setattr(inventory, "BULK_MIN_ROWS", 10**9)  # the same file by the upsert
    upserted = _import(content)
    assert (bulk.inserted, bulk.rejected, bulk.exceptions) == (
        upserted.inserted,
        upserted.rejected,
        upserted.exceptions,
    )
    assert _inventory() == cards and _report() == report
    assert bulk.rejected > 0 and any(kind == "invalid_row" for kind, *_ in report)


def test_unchanged_rows_are_skipped_and_only_the_rest_is_checked() -> None:
    _registry(60, Rates(**dict.fromkeys(Rates.__dataclass_fields__, 0.0)))
    rows = list(
        export_rows(60, seed=7, rates=Rates(**dict.fromkeys(Rates.__dataclass_fields__, 0.0)))
    )
    first = _import(csv_bytes(iter(rows)))
    assert (first.inserted, first.rejected) == (60, 0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT chip_serial, ctid::text FROM cps3_cps3card")
        places = dict(cursor.fetchall())

    # The same rows in another order, one changed, one now malformed, one repeated.
    header, body = rows[0], rows[1:]
    body.reverse()
    body[0] = [*body[0][:10], "suspended", *body[0][11:]]
    body[1] = [*body[1][:9], "2029-02-30", *body[1][10:]]
    body.append(list(body[2]))
    again = _import(csv_bytes(iter([header, *body])))
    assert (again.inserted, again.updated) == (0, 1)
    assert again.rejected == 3  # the malformed row and both rows of the repeated serial
    assert again.unchanged == 60 - 3
    invalid = list(Cps3Exception.objects.filter(kind="invalid_row").values_list("line", "detail"))
    assert invalid == [(3, "expires_on is not a YYYY-MM-DD date")]  # its line in this file
    duplicate = Cps3Exception.objects.filter(kind="duplicate_serial")
    assert sorted(line or 0 for line in duplicate.values_list("line", flat=True)) == [4, 62]
    with connection.cursor() as cursor:
        cursor.execute("SELECT chip_serial, ctid::text FROM cps3_cps3card")
        moved = {s for s, place in cursor.fetchall() if places[s] != place}
    assert moved == {body[0][6]}  # only the changed card was written again
    assert Cps3Card.objects.get(chip_serial=body[0][6]).status == "suspended"
    assert (
        Cps3Card.objects.get(chip_serial=body[1][6]).expires_on.isoformat() == rows[-2][9]
    )  # kept as stored


def test_dates_are_checked_exactly_inside_and_outside_the_fast_lookup() -> None:
    rows = [
        list(COLUMNS),
        _row(chip_serial="8025000000000001", birth_date="1899-12-31", expires_on="2204-02-29"),
        _row(chip_serial="8025000000000002", expires_on="2200-02-29"),
        _row(chip_serial="8025000000000003", birth_date="1970-13-01"),
        _row(chip_serial="8025000000000004", issued_on=""),
    ]
    result = _import(csv_bytes(iter(rows)))
    assert (result.inserted, result.rejected) == (1, 3)
    invalid = dict(Cps3Exception.objects.filter(kind="invalid_row").values_list("line", "detail"))
    assert invalid == {
        3: "expires_on is not a YYYY-MM-DD date",
        4: "birth_date is not a YYYY-MM-DD date",
        5: "issued_on is not a YYYY-MM-DD date",
    }
    card = Cps3Card.objects.get()
    assert (str(card.birth_date), card.expires_on.isoformat()) == (
        "1899-12-31",
        "2204-02-29",
    )


def test_the_bulk_load_checks_and_types_every_field_as_the_upsert_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bulk load's one pass (checks, digest, typed values, holder) against the staging view
    and the upsert's casts, on a row of each fault and on values at the edges of each rule."""
    _registry(3, Rates(**dict.fromkeys(Rates.__dataclass_fields__, 0.0)))
    serial = iter(range(1, 1000))

    def row(**values: str) -> list[str]:
        return _row(**{"chip_serial": f"80250000{next(serial):08X}", **values})

    cert = {"auth_issuer": "CN=AC X,O=Y,C=FR", "auth_serial": "00ab", "auth_status": "Valid"}
    rows = [
        list(COLUMNS),
        # Readable, at the edges: spaces, case, leading zeros, dates outside the fast lookup.
        row(national_id=f" {national_id(1)} ", last_name=" Martin ", card_type=" cps "),
        row(national_id=national_id(2), birth_date="", departement=" 2a ", card_status="ACTIVE"),
        row(birth_date="1899-12-31", expires_on="2204-02-29", issued_on="2000-02-29"),
        row(
            **cert,
            auth_not_after="2030-01-31",
            sign_serial="0",
            sign_issuer="",
            sign_not_after="2031-12-31",
            sign_status="revoked",
        ),
        row(national_id="1" * 12),  # no such holder
        # No certificate in a slot: its other fields are not read (a stray not-after is no fault).
        row(
            national_id="2" * 12,
            auth_serial="",
            auth_not_after="n/a",
            sign_serial="",
            sign_not_after="2030-01-01",
        ),
        # One row per fault.
        row(national_id=" "),
        row(last_name=""),
        row(first_name=" "),
        row(profession="1"),
        row(chip_serial="12345G78"),
        row(card_type="CPX"),
        row(issued_on="2023-02-29"),
        row(expires_on="2029-13-01"),
        row(card_status="lost"),
        row(birth_date="1970-02-30"),
        row(**cert, auth_not_after="2030-02-31"),
        row(sign_serial="xyz", sign_not_after="2030-01-01", sign_status="valid"),
        row(sign_serial="ab", sign_not_after="2030-01-01", sign_status="unknown"),
        # The same chip serial twice (another case and spaces): both left out.
        _row(chip_serial="80250000DEADBEEF"),
        _row(chip_serial=" 80250000deadbeef ", first_name="Paul"),
    ]
    content = csv_bytes(iter(rows))
    monkeypatch.setattr(inventory, "BULK_MIN_ROWS", 1)
    bulk = _import(content)
    cards, report = _inventory(), _report()

    Cps3Card.objects.all().delete()
    monkeypatch.setattr(inventory, "BULK_MIN_ROWS", 10**9)
    upserted = _import(content)
    assert _inventory() == cards and _report() == report
    assert (bulk.inserted, bulk.rejected) == (upserted.inserted, upserted.rejected) == (6, 15)
    invalid = [r for r in report if r[0] == "invalid_row"]
    assert len({detail for *_, detail in invalid}) == 12  # every reason, once each
    edge = Cps3Card.objects.get(chip_serial="8025000000000003")
    assert (str(edge.birth_date), str(edge.expires_on)) == ("1899-12-31", "2204-02-29")
    holders = Cps3Card.objects.filter(holder__isnull=False).values_list("national_id", flat=True)
    assert sorted(holders) == sorted(
        [national_id(0), national_id(0), national_id(1), national_id(2)]
    )
