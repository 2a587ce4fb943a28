"""Creating what is missing of the configured CA hierarchy (``pki_init``): CA keys and
certificates, and the delegated OCSP responder of each issuing CA."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from cryptography.hazmat.primitives import serialization
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_event_create
from pki import authorities
from pki.choices import CaKind
from pki.domain import builders, names
from pki.domain.profiles import PROFILES, Profile
from pki.hierarchy import AuthorityConfig, HierarchyConfig
from pki.key_backends import key_backend_get
from pki.keys.errors import KeyNotFound
from pki.models import CertificateAuthority
from pki.services.errors import translated
from pki.services.responders import responder_install
from pki.services.rows import certificate_row_insert


def _ensure_key(backend_alias: str, label: str, key_size: int) -> str:
    backend = key_backend_get(backend_alias)
    handle = backend.handle_for(label)
    # A key left by an interrupted run is reused: the CA row is what makes a CA exist.
    if backend.has_key(handle):
        return handle
    return backend.generate_rsa(label=label, key_size=key_size)


def _ca_profile_name(auth: AuthorityConfig) -> str:
    return "ca_root" if auth.kind == CaKind.ROOT else "ca_issuing"


def _ca_profile(config: HierarchyConfig, auth: AuthorityConfig) -> Profile:
    prof = PROFILES[_ca_profile_name(auth)]
    if config.allow_small_ca_keys:
        prof = prof.with_key_sizes(prof.rsa_key_sizes | {2048, 3072})
    return prof


def hierarchy_init(
    *, config: HierarchyConfig, backend: str, actor: Actor, officers: Sequence[str] = ()
) -> list[str]:
    """Create what is missing of the configured hierarchy; return what was created.

    ``officers``: the people of a ceremony (``pki_init`` checked them), recorded in every audit
    event of what was created."""
    witnessed = {"officers": list(officers)} if officers else {}
    created: list[str] = []
    with translated():
        key_backend_get(backend).check()
        for auth in config.authorities:
            ca = CertificateAuthority.objects.filter(short_name=auth.short_name).first()
            if ca is None:
                ca = _authority_create(
                    config=config, auth=auth, backend=backend, actor=actor, witnessed=witnessed
                )
                created.append(auth.short_name)
            elif not key_backend_get(ca.key_backend).has_key(ca.key_handle):
                # The rows are here but not the key: the database was made with another key store
                # (another checkout's var/, a removed var/): say so rather than fail later.
                raise KeyNotFound(
                    f"CA {ca.short_name} is in this database but its key is not in key backend "
                    f"{ca.key_backend!r}: the database was made with another key store (another "
                    "checkout, or a removed var/). Use another database (DATABASE_URL; "
                    "LOCAL_DB_NAME for make run) or drop this one to start afresh."
                )
            revoked = ca.certificate is not None and ca.certificate.status == "revoked"
            if ca.kind == CaKind.ISSUING and ca.ocsp_responder_id is None and not revoked:
                _responder_create(config=config, ca=ca, actor=actor, witnessed=witnessed)
                created.append(f"{auth.short_name} OCSP responder")
    return created


def _authority_create(
    *,
    config: HierarchyConfig,
    auth: AuthorityConfig,
    backend: str,
    actor: Actor,
    witnessed: dict[str, list[str]],
) -> CertificateAuthority:
    handle = _ensure_key(backend, auth.short_name, auth.key_size)
    key = key_backend_get(backend).private_key(handle)
    subject = names.ca_name(
        common_name=auth.common_name,
        organisation=config.organisation,
        organisation_units=config.organisation_units,
    )
    with transaction.atomic():
        parent = None
        issuer = None
        if auth.parent is not None:
            parent = CertificateAuthority.objects.select_for_update().get(short_name=auth.parent)
            issuer = authorities.authority_context_of(parent).issuer()
        now = timezone.now()
        cert = builders.build_certificate(
            profile=_ca_profile(config, auth),
            public_key=key.public_key(),
            subject=subject,
            serial=builders.random_serial(secrets.token_bytes),
            now=now,
            issuer=issuer,
            self_signing_key=key if issuer is None else None,
            policies=auth.policies.get(_ca_profile_name(auth), ()),
        )
        name_hash, key_hash = builders.issuer_hashes(cert)
        # an issuing CA's certificate is a row under its parent: its CRL can list it (§6)
        row = None
        if parent is not None:
            row = certificate_row_insert(
                ca_id=parent.pk,
                cert=cert,
                profile=_ca_profile_name(auth),
                holder=None,
                on_hold=False,
                now=now,
            )
        ca = CertificateAuthority.objects.create(
            short_name=auth.short_name,
            common_name=auth.common_name,
            kind=auth.kind,
            parent=parent,
            certificate=row,
            key_backend=backend,
            key_handle=handle,
            certificate_der=cert.public_bytes(serialization.Encoding.DER),
            issuer_name_hash=name_hash.hex(),
            issuer_key_hash=key_hash.hex(),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            profiles=list(auth.profiles),
            policies={
                p: [{"oid": s.oid, "cps_uri": s.cps_uri} for s in specs]
                for p, specs in auth.policies.items()
            },
            crl_next_update_hours=config.crl_next_update_hours,
            delta_crl_next_update_hours=config.delta_crl_next_update_hours,
            ocsp_validity_hours=config.ocsp_validity_hours,
        )
        audit_event_create(
            actor=actor,
            action="pki.authority_create",
            object_type="pki.authority",
            object_id=str(ca.pk),
            details={
                "short_name": ca.short_name,
                "backend": backend,
                "serial": format(cert.serial_number, "x"),
                "key_size": auth.key_size,
                **witnessed,
            },
        )
    return ca


def _responder_create(
    *,
    config: HierarchyConfig,
    ca: CertificateAuthority,
    actor: Actor,
    witnessed: dict[str, list[str]],
) -> None:
    label = f"{ca.short_name}-ocsp"
    handle = _ensure_key(ca.key_backend, label, config.responder_key_size)
    key = key_backend_get(ca.key_backend).private_key(handle)
    with transaction.atomic():
        ca = CertificateAuthority.objects.select_for_update().get(pk=ca.pk)
        if ca.ocsp_responder_id is not None:
            return
        responder_install(
            ca=ca,
            key=key,
            handle=handle,
            organisation=config.organisation,
            issuer=authorities.authority_context_of(ca).issuer(),
            actor=actor,
            action="pki.ocsp_responder_create",
            details=dict(witnessed),
        )
