"""The delegated OCSP responder certificate of each issuing CA: installed by ``pki_init``,
renewed with a new key before it expires (``pki_publish``, the beat task)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_event_create
from pki import authorities, selectors
from pki.choices import CaKind
from pki.domain import builders, names
from pki.domain.profiles import PROFILES
from pki.key_backends import key_backend_get
from pki.models import Certificate, CertificateAuthority
from pki.services.errors import translated
from pki.services.rows import certificate_row_insert


def ocsp_responder_renew(
    *, authority: str, actor: Actor, within: dt.timedelta, force: bool = False
) -> Certificate | None:
    """Replace the delegated responder certificate of an issuing CA, with a new key, when it
    expires within ``within`` (or at once with ``force``). Returns the new certificate, or
    ``None`` when nothing was due. The old key stays in the backend (answers it signed remain
    verifiable until their nextUpdate)."""
    ca = selectors.authority_get(short_name=authority)
    if not _responder_due(ca, within=within, force=force):
        return None
    old = ca.ocsp_responder
    assert old is not None
    old_key = x509.load_der_x509_certificate(bytes(old.der)).public_key()
    key_size = old_key.key_size if isinstance(old_key, rsa.RSAPublicKey) else 2048
    # Slow (key generation) and outside the transaction; a key left by a lost race is unused.
    with translated():
        backend = key_backend_get(ca.key_backend)
        label = f"{ca.short_name}-ocsp-{timezone.now():%Y%m%d%H%M%S}-{secrets.token_hex(2)}"
        handle = backend.generate_rsa(label=label, key_size=key_size)
        key = backend.private_key(handle)
    with transaction.atomic(), translated():
        ca = CertificateAuthority.objects.select_for_update().get(pk=ca.pk)
        if not _responder_due(ca, within=within, force=force) or ca.ocsp_responder_id != old.pk:
            return None
        context = authorities.authority_context_of(ca)
        row = responder_install(
            ca=ca,
            key=key,
            handle=handle,
            organisation=context.organisation,
            issuer=context.issuer(),
            actor=actor,
            action="pki.ocsp_responder_renew",
            details={
                "replaces": format(int(old.serial), "x"),
                "old_not_after": old.not_after.isoformat(),
            },
        )
    return row


def responder_install(
    *,
    ca: CertificateAuthority,
    key: rsa.RSAPrivateKey,
    handle: str,
    organisation: str,
    issuer: builders.Issuer,
    actor: Actor,
    action: str,
    details: Mapping[str, object] | None = None,
) -> Certificate:
    """Certify ``key`` as ``ca``'s delegated OCSP responder and make it the current one (inside
    the caller's transaction, with the CA row locked), audited as ``action``."""
    now = timezone.now()
    cert = builders.build_certificate(
        profile=PROFILES["ocsp_responder"],
        public_key=key.public_key(),
        subject=names.technical_subject(
            common_name=f"OCSP {ca.short_name}", organisation=organisation
        ),
        serial=builders.random_serial(secrets.token_bytes),
        now=now,
        issuer=issuer,
    )
    row = certificate_row_insert(
        ca_id=ca.pk, cert=cert, profile="ocsp_responder", holder=None, on_hold=False, now=now
    )
    ca.ocsp_responder = row
    ca.ocsp_key_handle = handle
    ca.save(update_fields=["ocsp_responder", "ocsp_key_handle"])
    audit_event_create(
        actor=actor,
        action=action,
        object_type="pki.certificate",
        object_id=str(row.pk),
        details={
            "authority": ca.short_name,
            "serial": format(cert.serial_number, "x"),
            **(details or {}),
        },
    )
    return row


def _responder_due(ca: CertificateAuthority, *, within: dt.timedelta, force: bool) -> bool:
    if ca.kind != CaKind.ISSUING or ca.ocsp_responder is None:
        return False
    return force or ca.ocsp_responder.not_after - within <= timezone.now()
