"""Fixtures of the mailer tests: the card key store (the seal), issued cards of real holders with
full postal addresses, and their mailers queued through the service (codes really sealed)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from tests.cms.personalization.conftest import card_key_dir, card_keys  # noqa: F401 - shared fixtures

_numbers = itertools.count(1)


class Code:
    """A PIN or PUK as the card programs hand it over: revealed on purpose only."""

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Code('****')"


def pin_of(n: int) -> str:
    return f"{(n * 7919) % 10000:04d}"


def puk_of(n: int) -> str:
    return f"{(n * 104729) % 10**8:08d}"


@pytest.fixture
def site(db):
    from cms.models import SitePool

    return SitePool.objects.create(code="paris", name="Paris")


@pytest.fixture
def issued_cards(cps4, site) -> Callable[..., list[Any]]:
    """``issued_cards(n)``: n issued cards of n holders with postal addresses (bulk inserts)."""
    from cards.products import card_serial, registry_card_number
    from cms.choices import CardStatus
    from cms.models import Card, Holder
    from tests.cms.conftest import _rpps

    def _make(count: int, *, pool=site) -> list[Card]:
        numbers = [next(_numbers) for _ in range(count)]
        holders = Holder.objects.bulk_create(
            Holder(
                national_id=_rpps(500_000 + n),
                last_name=f"MARTIN{n}",
                first_name="Claire",
                profession="10",
                address_line1=f"{n} rue de la Roquette",
                postal_code="75011",
                city="PARIS",
                departement="75",
            )
            for n in numbers
        )
        return Card.objects.bulk_create(
            Card(
                chip_serial=card_serial(f"{800_000_000 + n:010d}").hex().upper(),
                product=cps4,
                pool=pool,
                holder=holder,
                card_type="CPS",
                status=CardStatus.ISSUED,
                card_number=registry_card_number(card_serial(f"{800_000_000 + n:010d}")),
            )
            for n, holder in zip(numbers, holders, strict=True)
        )

    return _make


@pytest.fixture
def seal(card_keys) -> None:  # noqa: F811
    """The card key store with its masters, the sealing one included."""
    from cards.products import CPS4
    from cms.personalization.keys import card_keys_provision

    card_keys_provision(CPS4)


@pytest.fixture
def queued_mailers(issued_cards, seal) -> Callable[..., list[Any]]:
    """``queued_mailers(n)``: n issuance mailers queued with sealed codes (pin_of, puk_of)."""
    from django.db import transaction

    from cms.mailers.services import pin_mailer_queue
    from cms.mailers.wording import LetterKind

    def _make(count: int, **card_options: Any) -> list[Any]:
        mailers = []
        with transaction.atomic():
            for card in issued_cards(count, **card_options):
                n = int(card.chip_serial[2:], 16)
                mailers.append(
                    pin_mailer_queue(
                        card=card,
                        kind=LetterKind.ISSUANCE,
                        pin=Code(pin_of(n)),
                        puk=Code(puk_of(n)),
                    )
                )
        return mailers

    return _make


@pytest.fixture
def operator(caller_for):
    return caller_for("issuance_operator")
