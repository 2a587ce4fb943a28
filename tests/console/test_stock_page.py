"""Stock through the console: a vendor batch previewed then registered, a pool's low-stock
threshold and its alert on the home page."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from cms.choices import CardStatus
from cms.models import Card, SitePool, StockBatch
from core.models import AuditEvent
from tests.cms.personalization.conftest import card_key_dir, card_keys  # noqa: F401 - shared

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def transport_master(card_keys):  # noqa: F811
    """The card key store holds the test vendor's transport master (version 1, the batch's)."""
    from cards.products import CPS4
    from cms.personalization.keys import card_keys_provision

    card_keys_provision(CPS4)


BATCH = "chip_serial;desfire_uid;transport_key_version\n" + "".join(
    f"80250000019{n:09X};04AA00000000{n:02X};1\n" for n in range(3)
)


def test_batch_preview_then_register(client, make_user, cps4):
    client.force_login(make_user("issuance_operator"))
    upload = SimpleUploadedFile("batch.csv", BATCH.encode(), content_type="text/csv")
    preview = client.post(
        reverse("console:batch_register"),
        {"vendor": "idemia", "reference": "B-1", "product": cps4.pk, "file": upload},
    )
    assert preview.status_code == 200 and preview.context["count"] == 3
    assert not StockBatch.objects.exists()  # a preview writes nothing
    client.post(
        reverse("console:batch_register"),
        {
            "vendor": "idemia",
            "reference": "B-1",
            "product": cps4.pk,
            "token": preview.context["token"],
        },
    )
    batch = StockBatch.objects.get()
    assert batch.card_count == 3 and Card.objects.filter(status=CardStatus.IN_STOCK).count() == 3

    bad = SimpleUploadedFile("bad.csv", b"chip_serial\nXYZ\n", content_type="text/csv")
    refused = client.post(
        reverse("console:batch_register"),
        {"vendor": "idemia", "reference": "B-2", "product": cps4.pk, "file": bad},
        follow=True,
    )
    assert "line 2" in refused.content.decode() and StockBatch.objects.count() == 1


def test_low_stock_threshold_alerts_on_the_home_page(client, make_user, cps4):
    pool = SitePool.objects.create(code="paris-11", name="Paris 11")
    Card.objects.create(chip_serial="8025000001AA", product=cps4, pool=pool)
    client.force_login(make_user("issuance_operator", username="olivia"))
    client.post(reverse("console:pool_threshold", args=[pool.pk]), {"threshold": "5"})
    pool.refresh_from_db()
    assert pool.low_stock_threshold == 5
    assert AuditEvent.objects.get(action="stock.pool_threshold").details["threshold"] == 5
    home = client.get(reverse("console:home"))
    tile = next(t for t in home.context["tiles"] if t.url == reverse("console:stock"))
    assert tile.count == 1 and tile.alert
    client.post(reverse("console:pool_threshold", args=[pool.pk]), {"threshold": "1"})
    home = client.get(reverse("console:home"))
    tile = next(t for t in home.context["tiles"] if t.url == reverse("console:stock"))
    assert tile.count == 0 and not tile.alert
    bad = client.post(
        reverse("console:pool_threshold", args=[pool.pk]), {"threshold": "-1"}, follow=True
    )
    assert "whole number" in bad.content.decode()
