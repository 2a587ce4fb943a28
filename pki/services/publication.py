"""What ``pki_publish`` and the beat task do: CRLs, responder renewals and OCSP answers."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.errors import Conflict
from pki import authorities
from pki.choices import CaKind, CrlKind
from pki.domain import builders
from pki.domain.status import ocsp_status_of
from pki.models import Certificate, CertificateAuthority, OcspResponse
from pki.services.crl import crl_publish, crl_publish_if_due
from pki.services.errors import translated
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
        if ocsp and _authority_answer_due(ca, now=now, due_only=due_only):
            with transaction.atomic():
                _authority_status_presign(ca.short_name)
            done.append(f"{ca.short_name}: status answer signed by its parent")
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
    kinds = [CrlKind.FULL, CrlKind.DELTA] if parent.kind == CaKind.ISSUING else [CrlKind.FULL]
    for kind in kinds:
        with transaction.atomic():
            crl_publish(authority=parent.short_name, kind=kind, actor=actor)
    with transaction.atomic():
        _authority_status_presign(authority)
    return parent.short_name


def _authority_answer_due(ca: CertificateAuthority, *, now: dt.datetime, due_only: bool) -> bool:
    """A revoked CA's status answer (signed by its parent) is kept fresh like any other."""
    if ca.certificate_id is None:
        return False
    answer = OcspResponse.objects.filter(certificate_id=ca.certificate_id).first()
    if answer is None:
        return Certificate.objects.filter(pk=ca.certificate_id, status="revoked").exists()
    margin = dt.timedelta(seconds=settings.PKI_OCSP_REFRESH_MARGIN_SECONDS)
    return not due_only or answer.next_update - margin <= now


def _authority_status_presign(authority: str) -> None:
    """The parent's own OCSP answer about a CA's certificate, signed with the parent's key (the
    CA itself responds, RFC 6960 §4.2.2.2: a root has no delegated responder) and served by the
    pre-signed path of ``/ocsp``."""
    ca = CertificateAuthority.objects.select_related("certificate").get(short_name=authority)
    row = ca.certificate
    if row is None or ca.parent_id is None:
        return
    parent = authorities.authority_lock_shared(pk=ca.parent_id)
    with translated():
        issuer = parent.issuer()
    signer = builders.OcspSigner(
        issuer_certificate=parent.certificate,
        responder_certificate=parent.certificate,
        responder_key=issuer.key,
    )
    status, when, reason = ocsp_status_of(
        row.status,
        revoked_at=row.revoked_at,
        revocation_reason=row.revocation_reason,
        hold_since=row.hold_since,
    )
    now = timezone.now()
    with translated():
        answer = builders.ocsp_answer_sign(
            signer,
            serial=int(row.serial),
            status=status,
            revoked_at=when,
            reason=reason,
            now=now,
            validity=dt.timedelta(hours=parent.ocsp_validity_hours),
        )
    OcspResponse.objects.update_or_create(
        certificate=row,
        defaults={
            "authority_id": parent.pk,
            "serial": row.serial,
            "status": row.status,
            "this_update": answer.this_update,
            "next_update": answer.next_update,
            "der": answer.der,
        },
    )
