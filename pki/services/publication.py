"""What ``pki_publish`` and the beat task do: CRLs, responder renewals and OCSP answers."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.errors import Conflict
from pki.choices import CaKind, CrlKind
from pki.models import CertificateAuthority
from pki.services.crl import crl_publish, crl_publish_if_due
from pki.services.ocsp import ocsp_responses_refresh
from pki.services.responders import ocsp_responder_renew


def pki_publish_all(
    *,
    actor: Actor,
    authority: str | None = None,
    ocsp: bool = True,
    due_only: bool = False,
) -> list[str]:
    """What ``pki_publish`` and the beat task do; returns a line per action.

    ``due_only`` (the beat task, ``pki_publish --due``): a full CRL every
    ``PKI_FULL_CRL_INTERVAL_SECONDS``, a delta every ``PKI_DELTA_CRL_INTERVAL_SECONDS``, judged
    from the publications stored in the database, so a restarted beat resumes where it was;
    OCSP answers missing or near their nextUpdate. Otherwise everything is published now.
    Both renew responder certificates within ``PKI_OCSP_RESPONDER_RENEWAL_DAYS`` of expiry.
    """
    done: list[str] = []
    now = timezone.now()
    intervals = {
        CrlKind.FULL: dt.timedelta(seconds=settings.PKI_FULL_CRL_INTERVAL_SECONDS),
        CrlKind.DELTA: dt.timedelta(seconds=settings.PKI_DELTA_CRL_INTERVAL_SECONDS),
    }
    cas = CertificateAuthority.objects.order_by("id")
    if authority is not None:
        cas = cas.filter(short_name=authority)
    for ca in cas:
        kinds = [CrlKind.FULL, CrlKind.DELTA] if ca.kind == CaKind.ISSUING else [CrlKind.FULL]
        for kind in kinds:
            if due_only:
                crl = crl_publish_if_due(
                    authority=ca.short_name, kind=kind, interval=intervals[kind], actor=actor
                )
            else:
                crl = crl_publish(authority=ca.short_name, kind=kind, actor=actor)
            if crl is not None:
                line = f"{ca.short_name}: {kind} CRL #{crl.number} ({crl.entry_count} entries)"
                done.append(line)
        if ca.kind != CaKind.ISSUING:
            continue
        renewed = ocsp_responder_renew(
            authority=ca.short_name,
            actor=actor,
            within=dt.timedelta(days=settings.PKI_OCSP_RESPONDER_RENEWAL_DAYS),
        )
        if renewed is not None:
            done.append(
                f"{ca.short_name}: OCSP responder renewed, serial {int(renewed.serial):x} "
                f"valid until {renewed.not_after:%Y-%m-%d}"
            )
        if ocsp:
            # after a renewal every answer is signed again by the new responder
            due = None
            if due_only and renewed is None:
                due = now + dt.timedelta(seconds=settings.PKI_OCSP_REFRESH_MARGIN_SECONDS)
            count = ocsp_responses_refresh(actor=actor, authority=ca.short_name, due_before=due)
            done.append(f"{ca.short_name}: {count} OCSP responses signed")
    return done


def authority_parent_crls_publish(*, authority: str, actor: Actor) -> str:
    """Publish a full and a delta CRL of the parent of ``authority`` (CA keys: commands and
    signing workers only). Returns the parent's short name."""
    parent = CertificateAuthority.objects.select_related("parent").get(short_name=authority).parent
    if parent is None:
        raise Conflict(f"{authority} has no parent")
    for kind in (CrlKind.FULL, CrlKind.DELTA):
        with transaction.atomic():
            crl_publish(authority=parent.short_name, kind=kind, actor=actor)
    return parent.short_name
