"""Publishing the signed deny list: the publication task (and ``manage.py deny_list_publish``)
gives the pending changes the next version and stores the full list and the delta of that
version, signed by the status signer. Never called in a web request."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from cms.choices import DenyChange, DenyListKind
from cms.contactless import document
from cms.models import DenyListChangeRow, DenyListEntry, DenyListPublication
from core.actors import Actor
from core.audit import audit_event_create
from pki import services as pki_services

# pg_advisory_xact_lock key: one publisher at a time assigns versions
_PUBLISH_LOCK = 0x43505344  # "CPSD"


@dataclass(frozen=True, slots=True)
class Published:
    version: int
    entries: int
    changes: int


def _due(last: DenyListPublication | None, *, now: dt.datetime, pending: bool) -> bool:
    if last is None or pending:
        return True
    refresh = dt.timedelta(seconds=settings.CONTACTLESS_DENY_LIST_REFRESH_SECONDS)
    return last.issued_at + refresh <= now


def _store(
    *,
    version: int,
    kind: DenyListKind,
    body: bytes,
    issued_at: dt.datetime,
    next_update: dt.datetime,
    count: int,
    actor: Actor,
) -> DenyListPublication:
    signed = pki_services.status_document_sign(content=body, actor=actor)
    return DenyListPublication.objects.create(
        version=version,
        kind=kind,
        base_version=version - 1 if kind == DenyListKind.DELTA else None,
        issued_at=issued_at,
        next_update=next_update,
        entry_count=count,
        signer_serial=format(signed.signer_serial, "x"),
        der=signed.der,
        sha256=hashlib.sha256(signed.der).hexdigest(),
    )


def deny_list_publish(*, actor: Actor, force: bool = False) -> Published | None:
    """Publish version N+1 (full list and delta from N) when changes are pending, when none was
    published yet, when the last is older than ``CONTACTLESS_DENY_LIST_REFRESH_SECONDS``, or
    with ``force``; ``None`` when nothing was due. Run twice, the second call finds nothing."""
    # the signer's key is made (slowly) outside the transaction the first time
    pki_services.status_signer_ensure(actor=actor)
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_PUBLISH_LOCK])
        now = timezone.now()
        last = (
            DenyListPublication.objects.filter(kind=DenyListKind.FULL).order_by("-version").first()
        )
        pending = list(
            DenyListChangeRow.objects.select_for_update()
            .filter(version__isnull=True)
            .order_by("id")
            .values_list("id", "card_id", "change", "desfire_uid", "card_number", "reason")
        )
        if not force and not _due(last, now=now, pending=bool(pending)):
            return None
        version = (last.version if last else 0) + 1
        next_update = now + dt.timedelta(seconds=settings.CONTACTLESS_DENY_LIST_NEXT_UPDATE_SECONDS)
        entries = [
            document.Entry(uid, card, reason)
            for uid, card, reason in DenyListEntry.objects.values_list(
                "desfire_uid", "card_number", "reason"
            )
        ]
        _store(
            version=version,
            kind=DenyListKind.FULL,
            body=document.full_body(
                version=version, issued_at=now, next_update=next_update, entries=entries
            ),
            issued_at=now,
            next_update=next_update,
            count=len(entries),
            actor=actor,
        )
        # the last change of each card wins
        final: dict[object, tuple[str, document.Entry]] = {}
        for _pk, card_id, change, uid, card_number, reason in pending:
            final[card_id] = (change, document.Entry(uid, card_number, reason))
        added = [entry for change, entry in final.values() if change == DenyChange.ADD]
        removed = [
            document.Entry(entry.uid, entry.card)
            for change, entry in final.values()
            if change == DenyChange.REMOVE
        ]
        if version > 1:
            _store(
                version=version,
                kind=DenyListKind.DELTA,
                body=document.delta_body(
                    version=version,
                    issued_at=now,
                    next_update=next_update,
                    added=added,
                    removed=removed,
                ),
                issued_at=now,
                next_update=next_update,
                count=len(added) + len(removed),
                actor=actor,
            )
        if pending:
            DenyListChangeRow.objects.filter(pk__in=[row[0] for row in pending]).update(
                version=version
            )
        audit_event_create(
            actor=actor,
            action="contactless.deny_list_publish",
            object_type="cms.denylistpublication",
            object_id=str(version),
            details={"version": version, "entries": len(entries), "changes": len(pending)},
        )
    return Published(version=version, entries=len(entries), changes=len(added) + len(removed))
