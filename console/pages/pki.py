"""PKI: the CAs with their certificates and state, last and next CRL and delta, the OCSP responder
certificate and its expiry, CA certificates to download, and "publish now" (security officers),
which queues the signing on the signing queue (no key signs in a web request, ADR 0011)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from console.pages.base import ConsolePage, caller_of
from core.audit import audit_event_create
from core.roles import Role
from pki.choices import CrlKind
from pki.selectors import authority_list, crl_latest
from pki.tasks import pki_publish_now_task

READERS = (Role.SECURITY_OFFICER, Role.AUDITOR)


class PkiView(ConsolePage):
    roles = READERS
    template_name = "console/pki.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        now = timezone.now()
        rows = []
        for ca in authority_list().select_related("ocsp_responder"):
            full = crl_latest(short_name=ca.short_name, kind=CrlKind.FULL)
            delta = crl_latest(short_name=ca.short_name, kind=CrlKind.DELTA)
            rows.append(
                {
                    "ca": ca,
                    "valid": ca.not_before <= now <= ca.not_after,
                    "full": full,
                    "full_late": full is None or full.next_update < now,
                    "delta": delta,
                    "responder": ca.ocsp_responder,
                }
            )
        return {
            **super().get_context_data(**kwargs),
            "rows": rows,
            "may_publish": Role.SECURITY_OFFICER in caller_of(self.request).roles,
        }


class PkiPublishView(ConsolePage):
    """POST: queue a full publication (CRLs, deltas, OCSP answers); the request is audited."""

    roles = (Role.SECURITY_OFFICER,)
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        actor = caller_of(request).actor
        with transaction.atomic():
            audit_event_create(
                actor=actor,
                action="pki.publish_request",
                object_type="pki",
                object_id="all",
            )
            transaction.on_commit(lambda: pki_publish_now_task.delay(actor.id, actor.label))
        messages.success(request, _("Publication queued: CRLs and OCSP answers are being signed."))
        return HttpResponseRedirect(reverse("console:pki"))
