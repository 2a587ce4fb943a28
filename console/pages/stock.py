"""Stock: pools with their blank cards and low-stock thresholds, counts per product and site,
batches, and a vendor batch registered from its file after a preview (the file waits in the
cache between the preview and the confirmation, for this user only)."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from cms.choices import ProductStatus
from cms.selectors import batch_list, pool_list, product_list, stock_counts
from cms.services.stock import (
    pool_threshold_set,
    pools_low_on_stock,
    stock_batch_preview,
    stock_batch_register,
)
from console.pages.base import ConsolePage, caller_of, refused
from core.errors import ApplicationError, BadInput
from core.roles import Role

READERS = (Role.ISSUANCE_OPERATOR, Role.SECURITY_OFFICER, Role.AUDITOR)
KEEPERS = (Role.ISSUANCE_OPERATOR,)
PREVIEW_TTL = 3600


def _preview_key(token: str, user_id: int) -> str:
    return f"console:batch-preview:{user_id}:{token}"


class StockView(ConsolePage):
    roles = READERS
    template_name = "console/stock/index.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        low = {pool.pk: blank for pool, blank in pools_low_on_stock()}
        return {
            **super().get_context_data(**kwargs),
            "pools": [(pool, low.get(pool.pk)) for pool in pool_list()],
            "counts": stock_counts(),
            "batches": batch_list()[:50],
            "products": product_list().filter(status=ProductStatus.ISSUED),
            "may_manage": Role.ISSUANCE_OPERATOR in caller_of(self.request).roles,
        }


class PoolThresholdView(ConsolePage):
    roles = KEEPERS
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        text = request.POST.get("threshold", "").strip()
        try:
            if not text.isdigit():
                raise BadInput("A low-stock threshold is a whole number of cards.")
            pool_threshold_set(
                pool_id=self.kwargs["pool_id"], threshold=int(text), caller=caller_of(request)
            )
            messages.success(request, _("Threshold saved."))
        except ApplicationError as exc:
            refused(request, exc)
        return HttpResponseRedirect(reverse("console:stock"))


class BatchRegisterView(ConsolePage):
    """POST a file: the preview. POST ``token`` + ``confirm``: the registration."""

    roles = KEEPERS
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user_id = caller_of(request).user_id or 0
        fields = {
            "vendor": request.POST.get("vendor", "").strip(),
            "reference": request.POST.get("reference", "").strip(),
            "product": request.POST.get("product", ""),
        }
        token = request.POST.get("token", "")
        try:
            if not fields["product"].isdigit():
                raise BadInput("Choose the batch's product.")
            if token:
                content = cache.get(_preview_key(token, user_id))
                if content is None:
                    raise BadInput("The preview expired; upload the file again.")
                batch = stock_batch_register(
                    vendor=fields["vendor"],
                    reference=fields["reference"],
                    product_id=int(fields["product"]),
                    content=content,
                    caller=caller_of(request),
                )
                cache.delete(_preview_key(token, user_id))
                messages.success(
                    request,
                    _("Batch %(batch)s registered: %(n)s cards.")
                    % {"batch": str(batch), "n": batch.card_count},
                )
                return HttpResponseRedirect(reverse("console:stock"))
            upload = request.FILES.get("file")
            if upload is None:
                raise BadInput("Choose the vendor's batch file.")
            content = upload.read()
            rows = stock_batch_preview(content)
        except ApplicationError as exc:
            refused(request, exc)
            for row in exc.extra.get("rows", [])[:10]:
                messages.error(request, f"line {row['line']}: {'; '.join(row['errors'])}")
            return HttpResponseRedirect(reverse("console:stock"))
        token = uuid.uuid4().hex
        cache.set(_preview_key(token, user_id), content, PREVIEW_TTL)
        context = {"rows": rows[:20], "count": len(rows), "token": token, **fields}
        return render(request, "console/stock/preview.html", context)
