"""Django admin pages of the registry, for superusers, read-only.

Every change of the registry goes through a service (locks, lifecycle checks, audit), so the admin
shows the rows and never writes them. The pages appear once ``django.contrib.admin`` is installed
and routed by the project settings.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from cms import models


class _ReadOnlyForSuperusers(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.Holder)
class HolderAdmin(_ReadOnlyForSuperusers):
    list_display = ("national_id", "last_name", "first_name", "profession", "card_type", "status")
    list_filter = ("profession", "card_type", "status")
    search_fields = ("national_id", "last_name")


@admin.register(models.Product)
class ProductAdmin(_ReadOnlyForSuperusers):
    list_display = ("name", "version", "status", "validity_years", "requires_second_approval")


@admin.register(models.SitePool)
class SitePoolAdmin(_ReadOnlyForSuperusers):
    list_display = ("code", "name")


@admin.register(models.StockBatch)
class StockBatchAdmin(_ReadOnlyForSuperusers):
    list_display = ("vendor", "reference", "product", "card_count", "received_at")


@admin.register(models.Card)
class CardAdmin(_ReadOnlyForSuperusers):
    list_display = ("card_number", "chip_serial", "desfire_uid", "product", "status", "holder")
    list_filter = ("status", "product", "pool")
    search_fields = ("card_number", "chip_serial", "desfire_uid")
    list_select_related = ("product", "holder")


@admin.register(models.CardRequest)
class CardRequestAdmin(_ReadOnlyForSuperusers):
    list_display = ("pk", "kind", "status", "holder", "product", "created_at")
    list_filter = ("kind", "status")
    list_select_related = ("holder", "product")


@admin.register(models.CardTransitionApproval)
class CardTransitionApprovalAdmin(_ReadOnlyForSuperusers):
    list_display = ("card", "transition", "status", "requested_by", "decided_by", "created_at")


@admin.register(models.DenyListEntry)
class DenyListEntryAdmin(_ReadOnlyForSuperusers):
    list_display = ("desfire_uid", "card_number", "reason", "created_at")


@admin.register(models.CardCertificate)
class CardCertificateAdmin(_ReadOnlyForSuperusers):
    list_display = ("card", "slot", "certificate")
