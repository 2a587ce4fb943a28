"""PIN mailer print runs: PDFs (letters) per second for a run of 1,000, as a ratio to rendering
the same pages without their Code 128, measured in one run.

Three figures, each the best of ``--rounds``:
  - the letters rendered without codes (the baseline: reportlab drawing the same pages);
  - the same letters with their Code 128 (``cms.mailers.letter.render``);
  - the whole service path, ``print_run_print`` on PostgreSQL: 1,000 mailers locked, their codes
    unsealed (AES-GCM, a key derived per mailer in the card key store), rendered, the run and
    the mailers updated and audited.

    python bench/mailer.py [--letters N] [--rounds N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support.database import bench_database


class _Code:
    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value


def _best_interleaved(rounds: int, paths: dict) -> dict[str, tuple[float, int]]:  # type: ignore[type-arg]
    """Each path once a round, in turn, so that load from elsewhere on the machine falls on all
    of them alike; the best time of each, and its output size."""
    best: dict[str, tuple[float, int]] = {name: (float("inf"), 0) for name in paths}
    for _ in range(rounds):
        for name, run in paths.items():
            start = time.perf_counter()
            size = len(run())
            elapsed = time.perf_counter() - start
            best[name] = min(best[name], (elapsed, size))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mailer-bench-"))
    os.environ.update(
        CARD_KEY_STORE_DIR=str(tmp / "card-keys"),
        PKI_KEY_PASSPHRASE=secrets.token_hex(16),
        CELERY_TASK_ALWAYS_EAGER="1",
    )
    with bench_database("mailer"):
        from django.conf import settings
        from django.db import transaction

        from cards.products import CPS4, card_serial, registry_card_number
        from cms.callers import Caller
        from cms.choices import CardStatus, ProductStatus
        from cms.mailers.letter import Letter, address_lines, render
        from cms.mailers.references import reference_format
        from cms.mailers.services import (
            envelope_window,
            letterhead,
            pin_mailer_queue,
            print_run_create,
            print_run_print,
        )
        from cms.mailers.wording import LetterKind
        from cms.models import Card, Holder, Product, SitePool
        from cms.personalization.keys import card_keys_provision

        settings.MAILER_RUN_MAX_LETTERS = args.letters
        card_keys_provision(CPS4, test=True)
        n = args.letters
        head, window = letterhead(), envelope_window()
        letters = [
            Letter(
                recipient=f"Claire MARTIN{i}",
                address=address_lines(
                    line1=f"{i} rue de la Roquette",
                    line2="",
                    postal_code="75011",
                    city="Paris",
                    country="FR",
                ),
                card_number=registry_card_number(card_serial(f"{i + 1:010d}")),
                date=dt.date(2026, 12, 5),
                reference=reference_format(i + 1),
                pin=f"{i % 10000:04d}",
                puk=f"{i:08d}",
                kind=LetterKind.ISSUANCE,
                sequence=(i + 1, n),
                run_label="R000001",
            )
            for i in range(n)
        ]
        render(letters[:5], letterhead=head, window=window)  # warm-up: fonts, barcode tables

        # The service path: n real mailers of n holders, queued through the service.
        product = Product.objects.create(
            name="CPS4", version="bench", status=ProductStatus.ISSUED, validity_years=6,
            definition={}, definition_sha256="0" * 64,
        )  # fmt: skip
        site = SitePool.objects.create(code="bench", name="Bench")
        holders = Holder.objects.bulk_create(
            Holder(
                national_id=f"8{i:011d}", last_name=f"MARTIN{i}", first_name="Claire",
                profession="10", address_line1=f"{i} rue de la Roquette", postal_code="75011",
                city="PARIS", departement="75",
            )
            for i in range(n)
        )  # fmt: skip
        cards = Card.objects.bulk_create(
            Card(
                chip_serial=card_serial(f"{i + 1:010d}").hex().upper(), product=product,
                pool=site, holder=h, card_type="CPS", status=CardStatus.ISSUED,
                card_number=registry_card_number(card_serial(f"{i + 1:010d}")),
            )
            for i, h in enumerate(holders)
        )  # fmt: skip
        start = time.perf_counter()
        with transaction.atomic():
            for i, card in enumerate(cards):
                pin_mailer_queue(
                    card=card,
                    kind=LetterKind.ISSUANCE,
                    pin=_Code(f"{i % 10000:04d}"),
                    puk=_Code(f"{i:08d}"),
                )
        queue_rate = n / (time.perf_counter() - start)
        operator = Caller.for_system("bench")
        run = print_run_create(site_id=site.pk, caller=operator)
        best = _best_interleaved(
            args.rounds,
            {
                "render without codes (baseline)": lambda: render(
                    letters, letterhead=head, window=window, codes=False
                ),
                "render with Code 128": lambda: render(letters, letterhead=head, window=window),
                "print_run_print (DB, unseal, audit)": lambda: print_run_print(
                    run_id=run.pk, caller=operator
                ),
            },
        )

    plain = best["render without codes (baseline)"][0]
    rows = [(label, seconds, size) for label, (seconds, size) in best.items()]
    print(f"PIN mailer print run of {n} letters, best of {args.rounds}")
    print(f"{'path':40} {'seconds':>8} {'letters/s':>10} {'ratio':>6} {'KiB/letter':>11}")
    for label, seconds, nbytes in rows:
        print(
            f"{label:40} {seconds:8.2f} {n / seconds:10.0f} {plain / seconds:6.2f} "
            f"{nbytes / n / 1024:11.1f}"
        )
    print(f"queueing (seal + audit, one transaction): {queue_rate:.0f} mailers/s")


if __name__ == "__main__":
    main()
