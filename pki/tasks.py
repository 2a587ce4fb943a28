"""Celery tasks of the PKI: ids in, one service call, on the signing queue (routed in the PKI
block of the settings), retried if the HSM is down. Each service re-reads state under a lock,
so a redelivered task cannot sign stale data."""

from __future__ import annotations

from celery import shared_task

from core.actors import Actor
from core.errors import ServiceUnavailable
from pki import services


@shared_task(
    acks_late=True,
    autoretry_for=(ServiceUnavailable,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=20,
)
def pki_publish_task() -> None:
    """Beat entry: what is due (CRLs, deltas, OCSP answers, responder renewals), nothing more."""
    services.pki_publish_all(actor=Actor.system("pki_publish"), due_only=True)


@shared_task(
    acks_late=True,
    autoretry_for=(ServiceUnavailable,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=20,
)
def pki_publish_now_task(actor_id: str, actor_label: str) -> None:
    """A security officer's "publish now" from the console: every CRL and delta, OCSP answers,
    signed here on the signing queue, never in the web request (ADR 0011); audited as that
    officer."""
    services.pki_publish_all(actor=Actor(kind="user", id=actor_id, label=actor_label))


@shared_task(
    acks_late=True,
    autoretry_for=(ServiceUnavailable,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=20,
)
def authority_parent_crls_publish_task(authority: str) -> None:
    """After a CA revocation: the parent's full and delta CRLs at once, listing it."""
    services.authority_parent_crls_publish(authority=authority, actor=Actor.system("pki_revoke_ca"))


@shared_task(
    acks_late=True,
    autoretry_for=(ServiceUnavailable,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=20,
)
def audit_anchor_task() -> None:
    """Beat entry: sign and publish the audit chain head (``pki.services.anchor``)."""
    services.audit_anchor_sign(actor=Actor.system("audit_anchor"))
