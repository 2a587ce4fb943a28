"""The contactless status signer: a key of its own, certified by the technical CA under the
``contactless_status`` profile (a relying party pins that profile, not the OCSP responder), and
the CMS SignedData it puts on deny lists (ADR 0021). Signing happens in the publication task,
never in a web request."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets

from cryptography import x509
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_event_create
from pki import authorities, selectors
from pki.choices import CertificateStatus
from pki.domain import builders, names, signed_data
from pki.domain.profiles import PROFILES
from pki.key_backends import key_backend_get
from pki.models import CertificateAuthority, StatusSigner
from pki.services.errors import translated
from pki.services.rows import certificate_row_insert

PROFILE = "contactless_status"


@dataclasses.dataclass(frozen=True, slots=True)
class SignedDocument:
    der: bytes
    signer_serial: int


def _current(*, now: dt.datetime, within: dt.timedelta) -> StatusSigner | None:
    signer = (
        StatusSigner.objects.select_related("certificate")
        .filter(
            certificate__status=CertificateStatus.VALID, certificate__not_after__gt=now + within
        )
        .first()
    )
    return signer


def status_signer_ensure(*, actor: Actor, force: bool = False) -> StatusSigner:
    """The current status signer, a new one (new key, new certificate) when there is none or it
    expires within ``PKI_STATUS_SIGNER_RENEWAL_DAYS`` (or at once with ``force``)."""
    within = dt.timedelta(days=settings.PKI_STATUS_SIGNER_RENEWAL_DAYS)
    found = None if force else _current(now=timezone.now(), within=within)
    if found is not None:
        return found
    ca = selectors.authority_get(short_name=settings.CONTACTLESS_STATUS_CA)
    # Key generation is slow and stays outside the transaction; a key left by a lost race is unused.
    with translated():
        backend = key_backend_get(ca.key_backend)
        label = f"{ca.short_name}-status-{timezone.now():%Y%m%d%H%M%S}-{secrets.token_hex(2)}"
        handle = backend.generate_rsa(label=label, key_size=2048)
        key = backend.private_key(handle)
    with transaction.atomic(), translated():
        ca = CertificateAuthority.objects.select_for_update().get(pk=ca.pk)
        found = None if force else _current(now=timezone.now(), within=within)
        if found is not None:
            return found
        context = authorities.authority_context_of(ca)
        now = timezone.now()
        cert = builders.build_certificate(
            profile=PROFILES[PROFILE],
            public_key=key.public_key(),
            subject=names.technical_subject(
                common_name=f"CONTACTLESS STATUS {ca.short_name}",
                organisation=context.organisation,
            ),
            serial=builders.random_serial(secrets.token_bytes),
            now=now,
            issuer=context.issuer(),
            policies=context.policies_for(PROFILE),
        )
        row = certificate_row_insert(
            ca_id=ca.pk, cert=cert, profile=PROFILE, holder=None, on_hold=False, now=now
        )
        signer = StatusSigner.objects.create(
            certificate=row, key_backend=ca.key_backend, key_handle=handle
        )
        audit_event_create(
            actor=actor,
            action="pki.status_signer_create",
            object_type="pki.certificate",
            object_id=str(row.pk),
            details={"authority": ca.short_name, "serial": format(cert.serial_number, "x")},
        )
    return signer


def status_document_sign(*, content: bytes, actor: Actor) -> SignedDocument:
    """``content`` in a CMS SignedData by the current status signer, with the technical CA's
    certificate (a relying party holds the root)."""
    signer = status_signer_ensure(actor=actor)
    ca = signer.certificate.issuer
    certificate = x509.load_der_x509_certificate(bytes(signer.certificate.der))
    chain = [x509.load_der_x509_certificate(bytes(ca.certificate_der))]
    with translated():
        key = key_backend_get(signer.key_backend).private_key(signer.key_handle)
        der = signed_data.signed_data(content, certificate=certificate, key=key, chain=chain)
    return SignedDocument(der=der, signer_serial=certificate.serial_number)
