"""A synthetic CPS3 export, deterministic from a seed (for tests, demos and ``bench/migration.py``).

Professions and départements follow rough national proportions (most cards are held by nurses,
physicians and pharmacists; Paris, the Nord, the Bouches-du-Rhône and the Rhône have the most
professionals); CPS3 cards were valid three years, so expiry dates spread over the three years
around the export date. Each exception kind of the reconciliation is produced at its own rate.

``holder_rows`` gives the registry side (the holders the export names, in the holder-import
format), so a test or a benchmark can load the registry first and see only the exceptions asked for.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from cms.identifiers import luhn_digit
from cps3.inventory import COLUMNS

PROFESSIONS: tuple[tuple[str, float], ...] = (
    ("60", 0.36),  # infirmier
    ("10", 0.25),  # médecin
    ("21", 0.09),  # pharmacien
    ("70", 0.09),  # masseur-kinésithérapeute
    ("40", 0.05),  # chirurgien-dentiste
    ("50", 0.03),  # sage-femme
    ("91", 0.03),  # orthophoniste
    ("80", 0.02),  # pédicure-podologue
    ("28", 0.02),  # opticien-lunetier
    ("93", 0.03),  # psychologue
    ("26", 0.01),  # audioprothésiste
    ("92", 0.01),  # orthoptiste
    ("98", 0.01),  # manipulateur ERM
)
_BIG = {"75": 6.0, "59": 4.0, "13": 3.6, "69": 3.4, "92": 2.6, "33": 2.5, "31": 2.3, "93": 2.1}
DEPARTEMENTS: tuple[tuple[str, float], ...] = tuple(
    (d, _BIG.get(d, 1.0))
    for d in [f"{n:02d}" for n in range(1, 96) if n != 20] + ["2A", "2B", "971", "972", "974"]
)
LAST_NAMES = (
    "MARTIN",
    "BERNARD",
    "THOMAS",
    "PETIT",
    "ROBERT",
    "RICHARD",
    "DURAND",
    "DUBOIS",
    "MOREAU",
    "LAURENT",
    "SIMON",
    "MICHEL",
    "LEFÈVRE",
    "LEROY",
    "ROUX",
    "DAVID",
    "BERTRAND",
    "MOREL",
    "FOURNIER",
    "GIRARD",
    "BONNET",
    "DUPONT",
    "LAMBERT",
    "FONTAINE",
)
FIRST_NAMES = (
    "Marie",
    "Jean",
    "Nathalie",
    "Pierre",
    "Isabelle",
    "Michel",
    "Sylvie",
    "Philippe",
    "Catherine",
    "Alain",
    "Françoise",
    "Nicolas",
    "Sophie",
    "Éric",
    "Céline",
    "Julien",
    "Camille",
    "Léa",
    "Hélène",
    "Jérôme",
)
EXTERNAL_ISSUER = "CN=AC IGC-SANTE ELEMENTAIRE PERSONNES,OU=IGC-SANTE ELEMENTAIRE,O=ASIP-SANTE,C=FR"


@dataclass(frozen=True, slots=True)
class Rates:
    """The share of records that show each exception kind (each between 0 and 1)."""

    holder_unknown: float = 0.002
    identity_conflict: float = 0.001
    duplicate_serial: float = 0.0005
    several_active: float = 0.001
    card_revoked: float = 0.01
    card_expired: float = 0.01
    invalid_row: float = 0.0005


@dataclass(slots=True)
class Export:
    """What was generated, for checking: the record count and the chosen anomalies per kind."""

    records: int = 0
    anomalies: dict[str, int] = field(default_factory=dict)


def national_id(index: int) -> str:
    """A valid RPPS idNat_PS ("8" + 10 digits + Luhn digit) for the index-th professional."""
    body = f"{10_000_000 + index:010d}"
    return "8" + body + str(luhn_digit(body))


def _rng(seed: int, index: int) -> random.Random:
    """One generator per record: the export and the registry side draw the same first values."""
    return random.Random(seed * 1_000_003 + index)  # noqa: S311 - synthetic data


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _person(index: int) -> tuple[str, str, str]:
    rng = random.Random(-1 - index)  # noqa: S311 - synthetic data
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 48))
    return rng.choice(LAST_NAMES), rng.choice(FIRST_NAMES), born.isoformat()


def holder_rows(count: int, *, seed: int = 1, rates: Rates | None = None) -> Iterator[list[str]]:
    """The registry's holders for an export of ``count`` records (holder-import CSV rows,
    header first); holders the export must not find are left out at ``rates.holder_unknown``."""
    rates = rates or Rates()
    yield ["national_id", "last_name", "first_name", "profession", "postal_code"]
    for i in range(count):
        rng = _rng(seed, i)
        unknown = rng.random() < rates.holder_unknown
        profession = _pick(rng, PROFESSIONS)
        dept = _pick(rng, DEPARTEMENTS)
        if unknown:
            continue
        last, first, _ = _person(i)
        yield [national_id(i), last, first, profession, _postal(dept)]


def _postal(dept: str) -> str:
    if dept in ("2A", "2B"):
        return "20000" if dept == "2A" else "20200"
    return (dept + "000")[:5] if len(dept) == 3 else dept + "000"


def export_rows(
    count: int,
    *,
    seed: int = 1,
    rates: Rates | None = None,
    today: date | None = None,
    report: Export | None = None,
) -> Iterator[list[str]]:
    """The export's rows (header first): one card per professional, plus the anomalies."""
    rates = rates or Rates()
    today = today or date(2026, 12, 1)
    report = report if report is not None else Export()
    yield list(COLUMNS)
    for i in range(count):
        rng = _rng(seed, i)
        unknown = rng.random() < rates.holder_unknown  # same draws as holder_rows
        profession = _pick(rng, PROFESSIONS)
        dept = _pick(rng, DEPARTEMENTS)
        last, first, born = _person(i)
        kind = _anomaly(rng, rates, unknown)
        if kind:
            report.anomalies[kind] = report.anomalies.get(kind, 0) + 1
        expires = today + timedelta(days=rng.randrange(-30, 3 * 365))
        status = "active"
        if kind == "card_revoked":
            status = "revoked"
        elif kind == "card_expired":
            expires = today - timedelta(days=rng.randrange(1, 400))
            status = "expired"
        elif expires < today:
            expires = today + timedelta(days=rng.randrange(1, 30))
        issued = expires - timedelta(days=3 * 365)
        serial = f"{0x80250000_00000000 + i:016X}"
        if kind == "identity_conflict":
            last = last + "-" + rng.choice(LAST_NAMES)
        row = [
            national_id(i),
            last,
            first,
            born,
            profession,
            dept,
            serial,
            "CPS",
            issued.isoformat(),
            expires.isoformat(),
            status,
            EXTERNAL_ISSUER,
            f"{rng.getrandbits(64):x}",
            expires.isoformat(),
            "revoked" if status == "revoked" else "valid",
            EXTERNAL_ISSUER,
            f"{rng.getrandbits(64):x}",
            expires.isoformat(),
            "revoked" if status == "revoked" else "valid",
        ]
        if kind == "invalid_row":
            row[8] = "31/12/2020"
        yield row
        report.records += 1
        if kind == "duplicate_serial":
            yield [*row[:2], row[2] + "-BIS", *row[3:]]
            report.records += 1
        elif kind == "several_active":
            second = list(row)
            second[6] = f"{0x80260000_00000000 + i:016X}"
            yield second
            report.records += 1


def _anomaly(rng: random.Random, rates: Rates, unknown: bool) -> str | None:
    if unknown:
        return "holder_unknown"
    draw = rng.random()
    for kind in (
        "identity_conflict",
        "duplicate_serial",
        "several_active",
        "card_revoked",
        "card_expired",
        "invalid_row",
    ):
        share = getattr(rates, kind)
        if draw < share:
            return kind
        draw -= share
    return None


def csv_bytes(rows: Iterator[list[str]]) -> bytes:
    """Rows as the export's CSV (UTF-8, comma, CRLF as the csv module writes)."""
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8")
