"""Celery task of the signed deny list, on the signing queue (the status signer's key)."""

from __future__ import annotations

from celery import shared_task

from cms.contactless.services import deny_list_publish
from core.actors import Actor
from core.errors import ServiceUnavailable


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=(ServiceUnavailable,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=20,
)
def deny_list_publish_task() -> None:
    """Beat entry: a new version when changes are pending or the last is due for refresh."""
    deny_list_publish(actor=Actor.system("deny_list_publish"))
