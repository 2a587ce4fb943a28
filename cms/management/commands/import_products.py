"""Register the card products defined in cards/products.py (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from cms.callers import Caller
from cms.services.products import product_sync


class Command(BaseCommand):
    help = "Register (or confirm) the card product versions defined in cards/products.py."

    def handle(self, *args: Any, **options: Any) -> None:
        for product in product_sync(caller=Caller.for_system("import_products")):
            self.stdout.write(f"{product} ({product.status}) sha256 {product.definition_sha256}")
