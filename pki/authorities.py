"""What signing for one CA needs, prepared once per process: parsed certificates, policies,
CertID hashes and unlocked keys.

A context is keyed by a *stamp* (row id, creation time, current responder certificate) that the
callers read in the query they need anyway (the one that locks the CA row, or the OCSP lookup),
so a renewed responder or a re-created CA is picked up by the next call, with no query of its own.

Keys are loaded lazily and separately. The delegated responder key (``ocsp_signer``) signs OCSP
answers in the public endpoints and in the transaction of every status change, web requests
included (docs/adr/0002-ocsp-live-signing.md). The CA key (``issuer``) signs certificates and
CRLs: CRLs only in commands and signing workers; card and station certificates also inside the
personalization exchange and the station enrollment request, so the processes serving
``/api/v1/stations/`` are signing web workers (docs/adr/0011-signing-in-requests.md). The public
endpoints (``pki.views``, ``pki.wsgi``) never load a CA key.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection
from django.dispatch import receiver

from core.errors import NotFound
from pki.domain import builders
from pki.domain.extensions import ProductCategory
from pki.key_backends import key_backend_get
from pki.models import CertificateAuthority

ORGANISATION_FALLBACK = "ASIP-SANTE"

Stamp = tuple[int, dt.datetime, int | None]


def revocation_urls(short_name: str) -> builders.RevocationUrls:
    base = settings.PKI_PUBLIC_BASE_URL.rstrip("/")
    return builders.RevocationUrls(
        crl=f"{base}/pki/crl/{short_name}.crl",
        delta_crl=f"{base}/pki/crl/{short_name}-delta.crl",
        ocsp=f"{base}/ocsp",
        ca_issuers=f"{base}/pki/ca/{short_name}.cer",
    )


@dataclasses.dataclass(frozen=True, slots=True)
class AuthorityContext:
    """One CA as the signing code needs it (immutable; replaced when its stamp changes)."""

    pk: int
    stamp: Stamp
    short_name: str
    kind: str
    certificate: x509.Certificate
    urls: builders.RevocationUrls
    profiles: frozenset[str]
    policies: Mapping[str, tuple[builders.PolicySpec, ...]]
    organisation: str
    category: ProductCategory
    ocsp_validity_hours: int
    key_backend: str
    key_handle: str
    ocsp_key_handle: str
    responder_certificate: x509.Certificate | None
    # CertID (issuerNameHash, issuerKeyHash) per hash algorithm name, for matching requests
    cert_ids: Mapping[str, tuple[bytes, bytes]]

    def issuer(self) -> builders.Issuer:
        """The CA certificate with its signing key: for commands, signing workers and the
        signing web workers of ADR 0011 (personalization, station enrollment); never for the
        public endpoints."""
        key = _key(self.key_backend, self.key_handle)
        return builders.Issuer(self.certificate, key, self.urls)

    def ocsp_signer(self) -> builders.OcspSigner | None:
        """The delegated responder (certificate and key), or ``None`` if the CA has none."""
        if self.responder_certificate is None or not self.ocsp_key_handle:
            return None
        return builders.OcspSigner(
            issuer_certificate=self.certificate,
            responder_certificate=self.responder_certificate,
            responder_key=_key(self.key_backend, self.ocsp_key_handle),
        )

    def policies_for(self, profile: str) -> tuple[builders.PolicySpec, ...]:
        return self.policies.get(profile, ())


_lock = threading.Lock()
_contexts: dict[int, AuthorityContext] = {}


def _key(backend: str, handle: str) -> rsa.RSAPrivateKey:
    # Both backends keep their key objects (unlocked PKCS#8, or the token object's name) for
    # the life of the process, until the backend is closed.
    return key_backend_get(backend).private_key(handle)


def _build(ca: CertificateAuthority, responder_der: bytes | None) -> AuthorityContext:
    certificate = x509.load_der_x509_certificate(bytes(ca.certificate_der))
    orgs = certificate.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    return AuthorityContext(
        pk=ca.pk,
        stamp=(ca.pk, ca.created_at, ca.ocsp_responder_id),
        short_name=ca.short_name,
        kind=ca.kind,
        certificate=certificate,
        urls=revocation_urls(ca.short_name),
        profiles=frozenset(ca.profiles),
        policies={
            profile: tuple(builders.PolicySpec(p["oid"], p.get("cps_uri")) for p in specs)
            for profile, specs in ca.policies.items()
        },
        organisation=str(orgs[0].value) if orgs else ORGANISATION_FALLBACK,
        category=(ProductCategory.TEST_CARD if "TEST" in ca.common_name else ProductCategory.CARD),
        ocsp_validity_hours=ca.ocsp_validity_hours,
        key_backend=ca.key_backend,
        key_handle=ca.key_handle,
        ocsp_key_handle=ca.ocsp_key_handle,
        responder_certificate=(
            x509.load_der_x509_certificate(responder_der) if responder_der is not None else None
        ),
        cert_ids={
            name: builders.issuer_hashes(certificate, name) for name in builders.CERT_ID_HASHES
        },
    )


def authority_context(stamp: Stamp) -> AuthorityContext:
    """The context of the CA whose current stamp is ``stamp`` (loaded if new or changed)."""
    found = _contexts.get(stamp[0])
    if found is not None and found.stamp == stamp:
        return found
    ca = CertificateAuthority.objects.select_related("ocsp_responder").get(pk=stamp[0])
    responder = bytes(ca.ocsp_responder.der) if ca.ocsp_responder is not None else None
    context = _build(ca, responder)
    with _lock:
        _contexts[ca.pk] = context
    return context


def authority_context_of(ca: CertificateAuthority) -> AuthorityContext:
    """The context of a CA row already read (its stamp is in the row)."""
    return authority_context((ca.pk, ca.created_at, ca.ocsp_responder_id))


_STAMP_SQL = "SELECT id, created_at, ocsp_responder_id FROM pki_certificateauthority"


def authority_lock_shared(
    *, short_name: str | None = None, pk: int | None = None
) -> AuthorityContext:
    """Share-lock a CA row (status changes vs. CRL snapshots) and return its context."""
    column, value = ("short_name", short_name) if pk is None else ("id", pk)
    with connection.cursor() as cur:
        cur.execute(f"{_STAMP_SQL} WHERE {column} = %s FOR SHARE", [value])
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"no certificate authority {value!r}")
    return authority_context((row[0], row[1], row[2]))


def authorities_current() -> list[AuthorityContext]:
    """Every CA (the table is small), from one query of their stamps."""
    with connection.cursor() as cur:
        cur.execute(f"{_STAMP_SQL} ORDER BY id")
        rows = cur.fetchall()
    return [authority_context((r[0], r[1], r[2])) for r in rows]


def forget(ca_pk: int | None = None) -> None:
    """Drop cached contexts (one CA's, or all)."""
    with _lock:
        if ca_pk is None:
            _contexts.clear()
        else:
            _contexts.pop(ca_pk, None)


@receiver(setting_changed)
def _reset_on_settings_change(*, setting: str, **kwargs: Any) -> None:
    # cache invalidation only (tests override these settings)
    if setting in ("PKI_KEY_BACKENDS", "PKI_PUBLIC_BASE_URL"):
        forget()
