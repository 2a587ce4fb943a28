"""Products: registered from cards/products.py with a snapshot; versions are immutable."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from cms.choices import ProductStatus
from cms.models import Product
from cms.services.products import product_register, product_sync
from core.errors import Conflict
from core.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_sync_registers_cps4_issued_and_cps3_legacy_once(system):
    from cards.products import CPS4

    rows = product_sync(caller=system)
    assert {(p.name, p.status) for p in rows} == {("CPS4", "issued"), ("CPS3", "legacy")}
    cps4 = Product.objects.get(name="CPS4")
    assert cps4.definition == CPS4.snapshot() and cps4.validity_years == CPS4.validity_years
    count = AuditEvent.objects.count()
    call_command("import_products", stdout=io.StringIO())
    assert Product.objects.count() == 2 and AuditEvent.objects.count() == count


def test_a_version_never_changes_its_definition(system):
    args = {"name": "X", "version": "1", "status": ProductStatus.ISSUED, "validity_years": 6}
    product_register(definition={"a": 1}, caller=system, **args)
    with pytest.raises(Conflict):
        product_register(definition={"a": 2}, caller=system, **args)
