"""Stock: vendor batch files, pools, counts."""

from __future__ import annotations

import pytest

from cms.models import Card
from cms.selectors import stock_counts
from cms.services.stock import pool_create, stock_assign_pool, stock_batch_register
from core.errors import BadInput, Conflict, PolicyViolation
from core.models import AuditEvent
from tests.cms.personalization.conftest import card_key_dir, card_keys  # noqa: F401 - shared

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def transport_masters(card_keys):  # noqa: F811
    """The card key store holds the transport masters of versions 1 (test vendor) and 2."""
    import secrets

    from cards.products import CPS4
    from cms.personalization.keys import (
        card_key_store,
        card_keys_provision,
        transport_master_import,
    )
    from pki.keys.symmetric import master_label

    card_keys_provision(CPS4)
    if not card_key_store().has_key(master_label("desfire-transport", 2)):
        transport_master_import(version=2, key=secrets.token_bytes(16))


BATCH = (
    b"chip_serial;desfire_uid;transport_key_version\n"
    b"0011223344556677;04A1B2C3D4E5F6;2\n"
    b"0011223344556678;04A1B2C3D4E5F7;2\n"
    b"0011223344556679;;2\n"
)


def _register(product, caller, content=BATCH, reference="B-001"):
    return stock_batch_register(
        vendor="Idemia", reference=reference, product_id=product.pk, content=content, caller=caller
    )


def test_a_batch_registers_its_cards_once(cps4, caller_for):
    op = caller_for("issuance_operator")
    batch = _register(cps4, op)
    assert batch.card_count == 3 and Card.objects.filter(status="IN_STOCK").count() == 3
    assert Card.objects.get(chip_serial="0011223344556679").desfire_uid is None
    assert _register(cps4, op).pk == batch.pk
    assert Card.objects.count() == 3
    assert AuditEvent.objects.filter(action="stock.batch_register").count() == 1
    with pytest.raises(Conflict):
        _register(cps4, op, content=BATCH + b"00112233445566AA;;1\n")


def test_a_batch_with_one_bad_row_registers_nothing(cps4, caller_for):
    bad = BATCH + b"XYZ;04A1B2C3D4E5F6;300\n"
    with pytest.raises(BadInput) as info:
        _register(cps4, caller_for("issuance_operator"), content=bad)
    (row,) = info.value.extra["rows"]
    assert row["line"] == 5 and len(row["errors"]) == 3
    assert not Card.objects.exists()


def test_cards_already_registered_are_refused(cps4, caller_for):
    op = caller_for("issuance_operator")
    _register(cps4, op)
    with pytest.raises(Conflict) as info:
        _register(cps4, op, reference="B-002")
    assert "0011223344556677" in info.value.extra["already_registered"]


def test_no_stock_for_a_legacy_product(cps3, caller_for):
    with pytest.raises(PolicyViolation):
        _register(cps3, caller_for("issuance_operator"))


def test_pools_take_blank_cards_and_counts_follow(cps4, caller_for):
    op = caller_for("issuance_operator")
    batch = _register(cps4, op)
    pool = pool_create(code="paris", name="Paris", caller=op)
    assert pool_create(code="paris", name="Paris", caller=op).pk == pool.pk
    assert stock_assign_pool(pool_id=pool.pk, batch_id=batch.pk, caller=op) == 3
    assert stock_assign_pool(pool_id=pool.pk, batch_id=batch.pk, caller=op) == 0
    (row,) = stock_counts(pool_id=pool.pk)
    assert row["pool"] == "paris" and row["counts"]["IN_STOCK"] == 3
    assert row["counts"]["ACTIVE"] == 0


def test_a_batch_naming_an_unknown_or_the_factory_transport_key_is_refused(
    cps4, caller_for, settings
):
    op = caller_for("issuance_operator")
    unknown = b"chip_serial;desfire_uid;transport_key_version\n0011223344556690;;7\n"
    with pytest.raises(PolicyViolation, match="version 7"):
        _register(cps4, op, content=unknown, reference="B-unknown")
    factory = b"chip_serial;desfire_uid;transport_key_version\n0011223344556691;;0\n"
    with pytest.raises(PolicyViolation, match="factory"):
        _register(cps4, op, content=factory, reference="B-factory")
    silent = b"chip_serial;desfire_uid\n0011223344556692;\n"  # no version: the factory key
    with pytest.raises(PolicyViolation, match="factory"):
        _register(cps4, op, content=silent, reference="B-silent")
    assert not Card.objects.exists()
    assert not AuditEvent.objects.filter(action="stock.batch_register").exists()
    settings.DESFIRE_FACTORY_TRANSPORT_KEY = True  # a laboratory with factory cards only
    assert _register(cps4, op, content=factory, reference="B-factory").card_count == 1
