"""Stock: vendor batch files, pools, counts."""

from __future__ import annotations

import pytest

from cms.models import Card
from cms.selectors import stock_counts
from cms.services.stock import pool_create, stock_assign_pool, stock_batch_register
from core.errors import BadInput, Conflict, PolicyViolation
from core.models import AuditEvent

pytestmark = pytest.mark.django_db

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
