"""Set-up steps shared by ``manage.py demo``, the tests and the benchmark: a site, an enrolled
station, a blank card registered in stock, a holder with a queued request."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from cards.products import CPS4
from cms.callers import Caller
from cms.choices import RequestKind
from cms.models import Card, CardRequest, Holder, Product, SitePool, Station
from cms.personalization.choices import StationStatus
from cms.personalization.keys import TEST_TRANSPORT_VERSION, card_keys_provision
from cms.personalization.stations import station_code_renew, station_create, station_enroll
from cms.services.holders import HolderData, holder_create
from cms.services.products import product_sync
from cms.services.requests import request_create, request_queue, request_submit
from cms.services.stock import pool_create, stock_assign_pool, stock_batch_register

SYSTEM = Caller.for_system("demo")


def products_and_keys() -> Product:
    """Register the products and provision the test card keys; the CPS4 product row."""
    product_sync(caller=SYSTEM)
    card_keys_provision(CPS4)
    return Product.objects.get(name=CPS4.name, version=str(CPS4.version))


def site(code: str = "demo-site", name: str = "Demo personalization site") -> SitePool:
    return pool_create(code=code, name=name, caller=SYSTEM)


@dataclass(frozen=True)
class EnrolledStation:
    station: Station
    token: str

    def __repr__(self) -> str:
        return f"EnrolledStation({self.station.pk}, token='****')"


def station_enrolled(pool: SitePool, name: str = "demo-station") -> EnrolledStation:
    """Create (or re-enroll) a station: a fresh token either way."""
    existing = Station.objects.filter(site=pool, name=name).first()
    if existing is not None and existing.status != StationStatus.DISABLED:
        issued = station_code_renew(station_id=existing.pk, caller=SYSTEM)
    else:
        issued = station_create(site_code=pool.code, name=name, caller=SYSTEM)
    done = station_enroll(code=issued.code)
    return EnrolledStation(done.station, done.token)


_batches = itertools.count(1)


def blank_card_register(
    *,
    product: Product,
    pool: SitePool,
    chip_serial: str,
    desfire_uid: str,
    reference: str = "",
    transport_key_version: int = TEST_TRANSPORT_VERSION,
) -> Card:
    """Register one blank card (its vendor batch of one) in the pool; idempotent per serial.
    Virtual cards come with the test vendor's transport key (version 1, cardsim's default)."""
    found = Card.objects.filter(chip_serial=chip_serial.upper()).first()
    if found is not None:
        return found
    content = (
        "chip_serial,desfire_uid,transport_key_version\n"
        f"{chip_serial},{desfire_uid},{transport_key_version}\n"
    )
    stock_batch_register(
        vendor="cardsim",
        reference=reference or f"virtual-{chip_serial.upper()}",
        product_id=product.pk,
        content=content.encode(),
        caller=SYSTEM,
    )
    card = Card.objects.get(chip_serial=chip_serial.upper())
    stock_assign_pool(pool_id=pool.pk, card_ids=[card.pk], caller=SYSTEM)  # audited, like any move
    card.refresh_from_db()
    return card


def holder_demo(national_id: str = "810002813839") -> Holder:
    return holder_create(
        data=HolderData(
            national_id=national_id,
            last_name="MARTIN",
            first_name="Claire",
            profession="10",
            address_line1="12 rue de la Roquette",
            postal_code="75011",
            city="PARIS",
        ),
        caller=SYSTEM,
    )


def request_queued(
    *, holder: Holder, product: Product, pool: SitePool, operator: Caller
) -> CardRequest:
    """A new-card request, submitted (approved when no second approver is needed) and queued."""
    request = request_create(
        holder_id=holder.pk,
        kind=RequestKind.NEW,
        product_id=product.pk,
        pool_id=pool.pk,
        caller=operator,
    )
    request = request_submit(request_id=request.pk, caller=operator)
    return request_queue(request_id=request.pk, caller=SYSTEM)
