"""The card number is the chip serial (docs/adr/0012-card-number.md): the counter goes, and cards
numbered by it take the number of their chip (and so do their deny-list entries)."""

import re

from django.db import migrations

_CPS_SERIAL = re.compile(r"8025000001\d{10}")


def _renumber(apps, schema_editor):  # type: ignore[no-untyped-def]
    card_model = apps.get_model("cms", "Card")
    entry_model = apps.get_model("cms", "DenyListEntry")
    numbered = card_model.objects.filter(card_number__isnull=False)
    stale = [
        c
        for c in numbered
        if _CPS_SERIAL.fullmatch(c.chip_serial) and c.card_number != c.chip_serial
    ]
    for card in stale:  # free the numbers first: a counter number may be another chip's serial
        card_model.objects.filter(pk=card.pk).update(card_number=None)
    for card in stale:
        card_model.objects.filter(pk=card.pk).update(card_number=card.chip_serial)
        entry_model.objects.filter(card_id=card.pk).update(card_number=card.chip_serial)


class Migration(migrations.Migration):
    dependencies = [
        ("cms", "0004_station_certificate_seal_access_credential"),
    ]

    operations = [
        migrations.RunPython(_renumber, migrations.RunPython.noop),
        migrations.DeleteModel(name="CardNumberCounter"),
    ]
