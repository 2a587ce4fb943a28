"""Full and delta CRLs, assembled from the CRL entries stored with each listed certificate
(docs/adr/0003-crl-assembled-from-stored-entries.md) and signed under the CA row lock."""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_event_create
from core.errors import Conflict, NotFound
from pki import authorities
from pki.choices import CaKind, CertificateStatus, CrlKind
from pki.domain import builders, crl_der
from pki.domain.reasons import RevocationReason
from pki.domain.status import crl_entry_of
from pki.models import CertificateAuthority, CrlPublication
from pki.services.errors import translated

# Stored entries of the listed rows, concatenated server-side in one value (string_agg of bytea;
# the row order does not matter in a CRL).
_FULL_SQL_POSTGRESQL = (
    "SELECT string_agg(crl_entry, ''::bytea), count(*) FROM pki_certificate "
    "WHERE issuer_id = %s AND status <> 'valid' AND crl_entry IS NOT NULL"
)
# Listed rows without a stored entry (written outside the services): found through the
# partial index pki_cert_listed_no_entry_idx, normally empty.
_UNENCODED_SQL = (
    "SELECT CAST(serial AS TEXT), status, revoked_at, revocation_reason, hold_since "
    "FROM pki_certificate WHERE issuer_id = %s AND status <> 'valid' AND crl_entry IS NULL"
)
DELTA_SQL = (
    "SELECT crl_entry, CAST(serial AS TEXT), status, revoked_at, revocation_reason, hold_since, "
    "released_at FROM pki_certificate WHERE issuer_id = %s AND status_changed_at > %s"
)


def _listed_entry(
    serial: str, status: str, revoked_at: dt.datetime | None, reason: str, hold: dt.datetime | None
) -> bytes:
    entry = crl_entry_of(
        int(serial), status, revoked_at=revoked_at, revocation_reason=reason, hold_since=hold
    )
    assert entry is not None, "only listed rows are selected"
    return entry


def _full_entries(ca_id: int) -> tuple[bytes, int]:
    """The concatenated DER entries of every listed serial, and their count."""
    with connection.cursor() as cur:
        cur.execute(_FULL_SQL_POSTGRESQL, [ca_id])
        row = cur.fetchone()
        assert row is not None
        parts = [bytes(row[0] or b"")]
        count = int(row[1])
        cur.execute(_UNENCODED_SQL, [ca_id])
        for serial, status, revoked_at, reason, hold_since in cur.fetchall():
            parts.append(_listed_entry(serial, status, revoked_at, reason, hold_since))
            count += 1
    return b"".join(parts), count


def _delta_entries(ca_id: int, since: dt.datetime) -> tuple[bytes, int]:
    """Entries of what changed after ``since`` (index pki_cert_issuer_changed_idx): listed rows
    as stored, released ones as removeFromCRL."""
    parts: list[bytes] = []
    with connection.cursor() as cur:
        cur.execute(DELTA_SQL, [ca_id, connection.ops.adapt_datetimefield_value(since)])
        rows = cur.fetchall()
    for entry, serial, status, revoked_at, reason, hold_since, released_at in rows:
        if status != CertificateStatus.VALID:
            parts.append(
                bytes(entry)
                if entry is not None
                else _listed_entry(serial, status, revoked_at, reason, hold_since)
            )
        elif released_at is not None and released_at > since:
            remove = RevocationReason.REMOVE_FROM_CRL
            parts.append(crl_der.crl_entry(int(serial), released_at, remove))
    return b"".join(parts), len(parts)


@transaction.atomic
def crl_publish(*, authority: str, kind: CrlKind, actor: Actor) -> CrlPublication:
    """Sign and store the next full or delta CRL of one CA (monotonic shared number)."""
    return _crl_publish_locked(_authority_for_update(authority), kind, actor)


def _authority_for_update(short_name: str) -> CertificateAuthority:
    try:
        return CertificateAuthority.objects.select_for_update().get(short_name=short_name)
    except CertificateAuthority.DoesNotExist:
        raise NotFound(f"no certificate authority {short_name!r}") from None


def crl_due(
    ca: CertificateAuthority, kind: CrlKind, *, interval: dt.timedelta, now: dt.datetime
) -> bool:
    """Whether a CRL of ``kind`` is due, judged from the publications stored in the database.

    A full CRL is due ``interval`` after the last one; a delta ``interval`` after the last delta,
    and at once when a newer full CRL than its base exists (the delta follows its new base).
    """
    latest = ca.crls.filter(kind=kind).order_by("-number").values("as_of", "base_number").first()
    if latest is None or latest["as_of"] + interval <= now:
        return True
    if kind == CrlKind.DELTA:
        full = ca.crls.filter(kind=CrlKind.FULL).order_by("-number").values("number").first()
        return full is not None and full["number"] != latest["base_number"]
    return False


@transaction.atomic
def crl_publish_if_due(
    *, authority: str, kind: CrlKind, interval: dt.timedelta, actor: Actor
) -> CrlPublication | None:
    """:func:`crl_publish` if :func:`crl_due`, decided under the CA lock (a redelivered or
    concurrent run publishes once)."""
    ca = _authority_for_update(authority)
    if not crl_due(ca, kind, interval=interval, now=timezone.now()):
        return None
    return _crl_publish_locked(ca, kind, actor)


def _crl_publish_locked(ca: CertificateAuthority, kind: CrlKind, actor: Actor) -> CrlPublication:
    authority = ca.short_name
    now = timezone.now()
    base: CrlPublication | None = None
    if kind == CrlKind.DELTA:
        # not its DER: the base of a 1M-entry CRL is tens of megabytes
        base = ca.crls.filter(kind=CrlKind.FULL).order_by("-number").defer("der").first()
        if base is None:
            raise Conflict(f"CA {authority} has no full CRL yet: publish a full CRL first")
        entries, count = _delta_entries(ca.pk, base.as_of)
        hours = ca.delta_crl_next_update_hours
    else:
        entries, count = _full_entries(ca.pk)
        hours = ca.crl_next_update_hours
    number = ca.crl_number + 1
    next_update = now + dt.timedelta(hours=hours)
    with translated():
        issuer = authorities.authority_context_of(ca).issuer()
        crl = builders.assemble_crl(
            issuer_certificate=issuer.certificate,
            signing_key=issuer.key,
            entries=entries,
            number=number,
            this_update=now,
            next_update=next_update,
            delta_base=base.number if base else None,
            freshest_crl_url=issuer.urls.delta_crl if ca.kind == CaKind.ISSUING else None,
        )
    ca.crl_number = number
    ca.save(update_fields=["crl_number"])
    publication = CrlPublication.objects.create(
        authority=ca,
        kind=kind,
        number=number,
        base_number=base.number if base else None,
        this_update=now.replace(microsecond=0),
        next_update=next_update.replace(microsecond=0),
        as_of=now,
        entry_count=count,
        der=crl,
    )
    audit_event_create(
        actor=actor,
        action="pki.crl_publish",
        object_type="pki.crl",
        object_id=str(publication.pk),
        details={"authority": authority, "kind": kind, "number": number, "entries": count},
    )
    return publication
