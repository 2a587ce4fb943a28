"""The exceptions report brought up to date incrementally (docs/adr/0030) gives exactly what a full
rebuild gives, over a random sequence of imports and of changes to the registry, our PKI and the
date; and it falls back to a full rebuild when the previous report cannot be trusted."""

from __future__ import annotations

import io
import random
from collections import Counter
from typing import Any

import pytest
from django.db import transaction

from cms.callers import Caller
from cms.models import Holder
from cms.services.holder_import import holder_import
from cms.services.holders import holder_update
from core.actors import Actor
from cps3 import inventory
from cps3.generator import Rates, csv_bytes, export_rows, holder_rows, national_id
from cps3.inventory import cps3_import
from cps3.models import Cps3Card, Cps3Exception, Cps3Import

# Real commits: each import's report horizon is a transaction of its own, as in service.
pytestmark = pytest.mark.django_db(transaction=True)

RATES = Rates(
    holder_unknown=0.1,
    identity_conflict=0.05,
    duplicate_serial=0.03,
    several_active=0.05,
    card_revoked=0.05,
    card_expired=0.05,
    invalid_row=0.03,
)
COUNT = 120
SYSTEM = Caller.for_system("tests")


class _FullRebuild(Exception):
    """Raised to roll the comparison's full rebuild back."""


def _import(rows: list[list[str]]) -> Any:
    content = csv_bytes(iter(rows))
    return cps3_import(
        stream=io.BytesIO(content),
        filename="export.csv",
        size=len(content),
        actor=Actor.system("tests"),
    )


def _report() -> Counter[tuple[Any, ...]]:
    return Counter(
        Cps3Exception.objects.values_list(
            "scope", "kind", "line", "chip_serial", "national_id", "detail"
        )
    )


def _full(rows: list[list[str]], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Counter[Any]]:
    """The report a full rebuild gives for the state the last import left (the same file again,
    nothing incremental allowed), rolled back."""
    with monkeypatch.context() as patch:
        patch.setattr(inventory, "INCREMENTAL", False)
        try:
            with transaction.atomic():
                result = _import(rows)
                assert not Cps3Import.objects.get(pk=result.import_id).report_incremental
                report = _report()
                raise _FullRebuild
        except _FullRebuild:
            pass
    return result, report


def _ours(authority: Any, holder_key: Any, count: int) -> list[Any]:
    from pki import services
    from pki.domain.names import Holder as CertificateHolder

    issued = []
    for i in range(count):
        holder = CertificateHolder(
            national_id=national_id(i),
            surname="DUPONT",
            given_name="JEAN",
            title="Médecin",
            card_serial=f"{i:010d}",
            profession_code=10,
            email="jean.dupont@example.org",
        )
        issued.append(
            services.certificate_issue(
                authority=authority.short_name,
                profile="cps_auth",
                actor=Actor.system("tests"),
                public_key=holder_key.public_key(),
                holder=holder,
            )
        )
    return issued


def test_incremental_reports_equal_full_rebuilds_over_random_changes(
    authority: Any, holder_key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pki import services
    from pki.domain.reasons import RevocationReason

    rng = random.Random(17)
    holder_import(content=csv_bytes(holder_rows(COUNT, seed=3, rates=RATES)), caller=SYSTEM)
    rows = list(export_rows(COUNT, seed=3, rates=RATES))
    header, body = rows[0], rows[1:]
    ours = _ours(authority, holder_key, 4)
    issuer = f"CN={authority.common_name},O=ASIP-SANTE,C=FR"
    for row, cert in zip(body[:8:2], ours, strict=True):  # our certificates on four cards
        row[11:15] = [issuer, f"{int(cert.serial):X}", cert.not_after.date().isoformat(), "valid"]
    body[1][15:19] = [issuer, "0BADC0DE", "2030-01-01", "valid"]  # unknown to our PKI
    # Every import may redo as much as it likes incrementally: the comparison is the point.
    monkeypatch.setattr(inventory, "INCREMENTAL_MAX_SHARE", 1.0)
    first = _import([header, *body])
    assert not Cps3Import.objects.get(pk=first.import_id).report_incremental

    days = 0
    serial = 0x8030000000000000
    kinds: Counter[str] = Counter()
    for step in range(14):
        for _ in range(rng.randint(1, 3)):
            change = (
                "leave"
                if step == 0
                else rng.choice(
                    (
                        "status",
                        "rename",
                        "move",
                        "new card",
                        "drop row",
                        "invalid",
                        "duplicate",
                        "expiry",
                        "registry rename",
                        "registry add",
                        "revoke",
                        "days",
                        "same",
                    )
                )
            )
            kinds[change] += 1
            row = rng.choice(body)
            if change == "leave":  # a card leaves a group the report shows, to no group
                several = Counter(r[0] for r in body if r[10] == "active")
                row = next(r for r in body if several[r[0]] > 1)
                row[0] = national_id(10 * COUNT)
            elif change == "status":
                row[10] = rng.choice(("active", "suspended", "revoked", "expired"))
            elif change == "rename":
                row[1] = rng.choice(("MARTIN", "DURAND", row[1] + "-X"))
            elif change == "move":  # the card now names another holder (it leaves its group)
                row[0] = rng.choice(body)[0]
            elif change == "new card":
                serial += 1
                body.append([*row[:6], f"{serial:016X}", *row[7:10], "active", *row[11:]])
            elif change == "drop row":
                body.remove(row)
            elif change == "invalid":
                row[8] = "2020-13-01"
            elif change == "duplicate":
                body.append(list(row))
            elif change == "expiry":
                row[9] = f"2026-12-{rng.randint(1, 28):02d}"
            elif change == "registry rename":
                holder = Holder.objects.order_by("?").first()
                assert holder is not None
                holder_update(
                    holder_id=holder.pk,
                    changes={"last_name": holder.last_name + "-N"},
                    caller=SYSTEM,
                )
            elif change == "registry add":
                known = set(Holder.objects.values_list("national_id", flat=True))
                unknown = sorted({r[0] for r in body} - known)
                if unknown:
                    line = f"{unknown[0]},NOUVEAU,Jean,10,75001\n"
                    content = b"national_id,last_name,first_name,profession,postal_code\n"
                    holder_import(content=content + line.encode(), caller=SYSTEM)
            elif change == "revoke":
                cert = rng.choice(ours)
                cert.refresh_from_db()
                if cert.status != "revoked":
                    services.certificate_revoke(
                        certificate_id=cert.pk,
                        reason=RevocationReason.KEY_COMPROMISE,
                        actor=Actor.system("tests"),
                    )
            elif change == "days":  # the report is made on a later day
                days += rng.choice((1, 7, 40, 200))
                monkeypatch.setattr(inventory, "TODAY", f"current_date + {days}")
        result = _import([header, *body])
        assert Cps3Import.objects.get(pk=result.import_id).report_incremental
        incremental = _report()
        full, expected = _full([header, *body], monkeypatch)
        assert incremental == expected, sorted(set(incremental) ^ set(expected))
        assert (result.exceptions, result.rejected) == (full.exceptions, full.rejected)
    assert len(kinds) >= 8, kinds  # the sequence tried most kinds of change
    assert {k for _, k, *_ in _report()} >= {"invalid_row", "several_active", "holder_unknown"}

    # A day before the previous report's: nothing incremental can be proved.
    monkeypatch.setattr(inventory, "TODAY", f"current_date + {days - 1}")
    result = _import([header, *body])
    assert not Cps3Import.objects.get(pk=result.import_id).report_incremental

    # The inventory written outside an import: the next report is rebuilt in full.
    monkeypatch.setattr(inventory, "TODAY", f"current_date + {days}")
    assert Cps3Import.objects.get(pk=_import([header, *body]).import_id).report_incremental
    Cps3Card.objects.filter(chip_serial=body[0][6].upper()).update(status="revoked")
    result = _import([header, *body])
    assert not Cps3Import.objects.get(pk=result.import_id).report_incremental
    assert ("card", "card_revoked") in {(s, k) for s, k, *_ in _report()}
