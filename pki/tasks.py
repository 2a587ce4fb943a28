"""Celery tasks of the PKI: ids in, one service call, on the signing queue (routed in the PKI
block of the settings), retried if the HSM is down. Each service re-reads state under a lock,
so a redelivered task cannot sign stale data."""

from __future__ import annotations

from celery import shared_task

from core.actors import Actor
from core.errors import ServiceUnavailable
from pki import services
from pki.choices import CaKind, CrlKind
from pki.models import CertificateAuthority


@shared_task(
    acks_late=True,
    autoretry_for=(ServiceUnavailable,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=20,
)
def ocsp_responses_refresh_task(*, certificate_ids: list[int]) -> int:
    return services.ocsp_responses_refresh(
        actor=Actor.system("pki_ocsp_refresh"), certificate_ids=certificate_ids
    )


@shared_task(
    acks_late=True,
    autoretry_for=(ServiceUnavailable,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=20,
)
def crl_publish_task(*, authority: str, kind: str) -> int:
    publication = services.crl_publish(
        authority=authority, kind=CrlKind(kind), actor=Actor.system("pki_publish")
    )
    return publication.number


@shared_task(
    acks_late=True,
    autoretry_for=(ServiceUnavailable,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=20,
)
def pki_publish_task() -> None:
    """Beat entry: full CRLs of every CA, delta CRLs of issuing CAs, fresh OCSP answers."""
    pki_publish_all(actor=Actor.system("pki_publish"))


def pki_publish_all(*, actor: Actor, authority: str | None = None, ocsp: bool = True) -> list[str]:
    """What ``pki_publish`` and the beat task do; returns a line per publication."""
    done: list[str] = []
    cas = CertificateAuthority.objects.order_by("id")
    if authority is not None:
        cas = cas.filter(short_name=authority)
    for ca in cas:
        full = services.crl_publish(authority=ca.short_name, kind=CrlKind.FULL, actor=actor)
        done.append(f"{ca.short_name}: full CRL #{full.number} ({full.entry_count} entries)")
        if ca.kind == CaKind.ISSUING:
            delta = services.crl_publish(authority=ca.short_name, kind=CrlKind.DELTA, actor=actor)
            done.append(f"{ca.short_name}: delta CRL #{delta.number} ({delta.entry_count} entries)")
        if ocsp and ca.kind == CaKind.ISSUING:
            count = services.ocsp_responses_refresh(actor=actor, authority=ca.short_name)
            done.append(f"{ca.short_name}: {count} OCSP responses signed")
    return done
