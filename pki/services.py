"""Writes of the PKI app: each locks its rows, re-reads, audits in the same transaction."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable, Iterator
from decimal import Decimal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_event_create
from core.errors import BadInput, Conflict, NotFound, PolicyViolation, ServiceUnavailable
from pki.choices import CaKind, CertificateStatus, CrlKind
from pki.domain import builders, names
from pki.domain.errors import MalformedRequest, ProfileViolation
from pki.domain.extensions import CardType, ProductCategory
from pki.domain.profiles import PROFILES, Profile, profile_get
from pki.domain.reasons import REVOKE_REASONS, RevocationReason
from pki.hierarchy import AuthorityConfig, HierarchyConfig
from pki.key_backends import key_backend_get
from pki.keys.errors import KeyBackendError, KeyBackendUnavailable
from pki.models import Certificate, CertificateAuthority, CrlPublication, OcspResponse

ORGANISATION_FALLBACK = "ASIP-SANTE"


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Domain and backend errors become the application errors users see."""
    try:
        yield
    except ProfileViolation as exc:
        raise PolicyViolation(str(exc), extra={"rule": exc.rule}) from None
    except MalformedRequest as exc:
        raise BadInput(str(exc)) from None
    except KeyBackendUnavailable as exc:
        raise ServiceUnavailable(str(exc)) from None
    except KeyBackendError as exc:
        raise ServiceUnavailable(f"key backend error: {exc}") from None


def revocation_urls(short_name: str) -> builders.RevocationUrls:
    base = settings.PKI_PUBLIC_BASE_URL.rstrip("/")
    return builders.RevocationUrls(
        crl=f"{base}/pki/crl/{short_name}.crl",
        delta_crl=f"{base}/pki/crl/{short_name}-delta.crl",
        ocsp=f"{base}/ocsp",
        ca_issuers=f"{base}/pki/ca/{short_name}.cer",
    )


def _ca_certificate(ca: CertificateAuthority) -> x509.Certificate:
    return x509.load_der_x509_certificate(bytes(ca.certificate_der))


def _issuer(ca: CertificateAuthority) -> builders.Issuer:
    key = key_backend_get(ca.key_backend).private_key(ca.key_handle)
    return builders.Issuer(_ca_certificate(ca), key, revocation_urls(ca.short_name))


def _lock_authority_shared(ca_id: int) -> None:
    """Status changes share-lock their CA so that a CRL being built sees all or none of them."""
    with connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pki_certificateauthority WHERE id = %s FOR SHARE", [ca_id])


def _holder_snapshot(holder: names.Holder | None) -> dict[str, object]:
    if holder is None:
        return {}
    data = dataclasses.asdict(holder)
    data["card_type"] = int(holder.card_type)
    return data


def _policies(ca: CertificateAuthority, profile: str) -> list[builders.PolicySpec]:
    return [builders.PolicySpec(p["oid"], p.get("cps_uri")) for p in ca.policies.get(profile, [])]


def _organisation(ca: CertificateAuthority) -> str:
    cert = _ca_certificate(ca)
    attrs = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    return str(attrs[0].value) if attrs else ORGANISATION_FALLBACK


def _category(ca: CertificateAuthority) -> ProductCategory:
    return ProductCategory.TEST_CARD if "TEST" in ca.common_name else ProductCategory.CARD


def _store(
    *,
    ca: CertificateAuthority,
    cert: x509.Certificate,
    profile: str,
    holder: names.Holder | None,
    on_hold: bool,
    now: dt.datetime,
) -> Certificate:
    der = cert.public_bytes(serialization.Encoding.DER)
    return Certificate.objects.create(
        issuer=ca,
        serial=Decimal(cert.serial_number),
        profile=profile,
        status=CertificateStatus.ON_HOLD if on_hold else CertificateStatus.VALID,
        subject=cert.subject.rfc4514_string(),
        national_id=holder.national_id if holder else "",
        holder=_holder_snapshot(holder),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        der=der,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        hold_since=now if on_hold else None,
        status_changed_at=now,
    )


def _refresh_after_commit(certificate_ids: list[int]) -> None:
    from pki.tasks import ocsp_responses_refresh_task

    transaction.on_commit(
        lambda: ocsp_responses_refresh_task.delay(certificate_ids=certificate_ids)
    )


# --- issuance ---------------------------------------------------------------------------------


def certificate_issue(
    *,
    authority: str,
    profile: str,
    actor: Actor,
    public_key: rsa.RSAPublicKey | None = None,
    csr: bytes | None = None,
    holder: names.Holder | None = None,
    common_name: str | None = None,
    on_hold: bool = False,
) -> Certificate:
    """Issue a certificate from a public key (on-card generation) or from a CSR.

    ``on_hold=True`` issues it already suspended (certificateHold) until activation.
    """
    if (public_key is None) == (csr is None):
        raise BadInput("give exactly one of a public key or a CSR")
    with _translated():
        prof = profile_get(profile)
        request_subject: x509.Name | None = None
        key: CertificatePublicKeyTypes
        if csr is not None:
            request = builders.parse_csr(csr)
            key = request.public_key()
            request_subject = request.subject
        else:
            assert public_key is not None
            key = public_key
        if prof.holder_required:
            if holder is None:
                raise ProfileViolation("holder.required", f"profile {profile} needs holder data")
            names.validate_holder(holder, needs_email=prof.san.value == "email")
            subject = names.holder_subject(holder)
        else:
            cn = common_name
            if cn is None and request_subject is not None:
                found = request_subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
                cn = str(found[0].value) if found else None
            if not cn:
                raise ProfileViolation("subject.common_name", "a common name is required")
            subject = None
            subject_cn = cn
        with transaction.atomic():
            ca = _authority_for_issuance(authority, prof)
            _lock_authority_shared(ca.pk)
            if subject is None:
                subject = names.technical_subject(
                    common_name=subject_cn, organisation=_organisation(ca)
                )
            now = timezone.now()
            cert = builders.build_certificate(
                profile=prof,
                public_key=key,
                subject=subject,
                serial=builders.random_serial(secrets.token_bytes),
                now=now,
                issuer=_issuer(ca),
                holder=holder if prof.holder_required else None,
                policies=_policies(ca, profile),
                category=_category(ca),
            )
            row = _store(ca=ca, cert=cert, profile=profile, holder=holder, on_hold=on_hold, now=now)
            audit_event_create(
                actor=actor,
                action="pki.certificate_issue",
                object_type="pki.certificate",
                object_id=str(row.pk),
                details={
                    "authority": ca.short_name,
                    "profile": profile,
                    "serial": format(cert.serial_number, "x"),
                    "on_hold": on_hold,
                    "from_csr": csr is not None,
                },
            )
            _refresh_after_commit([row.pk])
    return row


def _authority_for_issuance(short_name: str, prof: Profile) -> CertificateAuthority:
    try:
        ca = CertificateAuthority.objects.get(short_name=short_name)
    except CertificateAuthority.DoesNotExist:
        raise NotFound(f"no certificate authority {short_name!r}") from None
    if prof.name not in ca.profiles and prof.name != "ocsp_responder":
        raise ProfileViolation(
            "profile.offered_by_ca", f"CA {short_name} does not issue profile {prof.name}"
        )
    return ca


# --- revocation and hold ----------------------------------------------------------------------


def _locked_certificate(certificate_id: int) -> Certificate:
    try:
        issuer_id = Certificate.objects.values_list("issuer_id", flat=True).get(pk=certificate_id)
    except Certificate.DoesNotExist:
        raise NotFound(f"no certificate #{certificate_id}") from None
    _lock_authority_shared(issuer_id)
    return Certificate.objects.select_for_update().get(pk=certificate_id)


def _audit_status(cert: Certificate, actor: Actor, action: str, **details: object) -> None:
    audit_event_create(
        actor=actor,
        action=action,
        object_type="pki.certificate",
        object_id=str(cert.pk),
        details={"serial": format(int(cert.serial), "x"), "status": cert.status, **details},
    )


@transaction.atomic
def certificate_revoke(
    *, certificate_id: int, reason: RevocationReason, actor: Actor
) -> Certificate:
    """Revoke for good. Revoking a revoked certificate is refused (409)."""
    if reason not in REVOKE_REASONS:
        raise BadInput(f"{reason.value} is not a revocation reason; use hold/release for holds")
    cert = _locked_certificate(certificate_id)
    if cert.status == CertificateStatus.REVOKED:
        raise Conflict(
            f"certificate {int(cert.serial):x} is already revoked ({cert.revocation_reason})"
        )
    now = timezone.now()
    cert.status = CertificateStatus.REVOKED
    cert.revoked_at = now
    cert.revocation_reason = reason.value
    cert.status_changed_at = now
    cert.save(update_fields=["status", "revoked_at", "revocation_reason", "status_changed_at"])
    _audit_status(cert, actor, "pki.certificate_revoke", reason=reason.value)
    _refresh_after_commit([cert.pk])
    return cert


@transaction.atomic
def certificate_hold(*, certificate_id: int, actor: Actor) -> Certificate:
    """Suspend (certificateHold). Holding a held certificate is a no-op."""
    cert = _locked_certificate(certificate_id)
    if cert.status == CertificateStatus.ON_HOLD:
        return cert
    if cert.status == CertificateStatus.REVOKED:
        raise Conflict(f"certificate {int(cert.serial):x} is revoked; it cannot be put on hold")
    now = timezone.now()
    cert.status = CertificateStatus.ON_HOLD
    cert.hold_since = now
    cert.status_changed_at = now
    cert.save(update_fields=["status", "hold_since", "status_changed_at"])
    _audit_status(cert, actor, "pki.certificate_hold")
    _refresh_after_commit([cert.pk])
    return cert


@transaction.atomic
def certificate_release_hold(*, certificate_id: int, actor: Actor) -> Certificate:
    """Lift a hold (removeFromCRL in the next delta). Releasing a valid one is a no-op."""
    cert = _locked_certificate(certificate_id)
    if cert.status == CertificateStatus.VALID:
        return cert
    if cert.status == CertificateStatus.REVOKED:
        raise Conflict(f"certificate {int(cert.serial):x} is revoked; it cannot be released")
    now = timezone.now()
    cert.status = CertificateStatus.VALID
    cert.released_at = now
    cert.status_changed_at = now
    cert.save(update_fields=["status", "released_at", "status_changed_at"])
    _audit_status(cert, actor, "pki.certificate_release_hold")
    _refresh_after_commit([cert.pk])
    return cert


# --- CRLs ------------------------------------------------------------------------------------

_REASONS = {r.value: r for r in RevocationReason}


def _full_entries(ca_id: int) -> list[x509.RevokedCertificate]:
    """Every listed serial, read in one query and turned into entries in one pass."""
    hold = RevocationReason.CERTIFICATE_HOLD
    out: list[x509.RevokedCertificate] = []
    with connection.cursor() as cur:
        cur.execute(
            "SELECT serial::text, status, revoked_at, revocation_reason, hold_since "
            "FROM pki_certificate WHERE issuer_id = %s AND status <> 'valid'",
            [ca_id],
        )
        entry = builders.revoked_certificate
        for serial, status, revoked_at, reason, hold_since in cur:
            if status == CertificateStatus.REVOKED:
                out.append(entry(builders.CrlEntry(int(serial), revoked_at, _REASONS[reason])))
            else:
                out.append(entry(builders.CrlEntry(int(serial), hold_since, hold)))
    return out


def _delta_entries(ca_id: int, since: dt.datetime) -> list[x509.RevokedCertificate]:
    out: list[x509.RevokedCertificate] = []
    rows = Certificate.objects.filter(issuer_id=ca_id, status_changed_at__gt=since).values_list(
        "serial", "status", "revoked_at", "revocation_reason", "hold_since", "released_at"
    )
    for serial, status, revoked_at, reason, hold_since, released_at in rows:
        if status == CertificateStatus.REVOKED and revoked_at is not None:
            item = builders.CrlEntry(int(serial), revoked_at, _REASONS[reason])
        elif status == CertificateStatus.ON_HOLD and hold_since is not None:
            item = builders.CrlEntry(int(serial), hold_since, RevocationReason.CERTIFICATE_HOLD)
        elif released_at is not None and released_at > since:
            item = builders.CrlEntry(int(serial), released_at, RevocationReason.REMOVE_FROM_CRL)
        else:
            continue
        out.append(builders.revoked_certificate(item))
    return out


@transaction.atomic
def crl_publish(*, authority: str, kind: CrlKind, actor: Actor) -> CrlPublication:
    """Sign and store the next full or delta CRL of one CA (monotonic shared number)."""
    try:
        ca = CertificateAuthority.objects.select_for_update().get(short_name=authority)
    except CertificateAuthority.DoesNotExist:
        raise NotFound(f"no certificate authority {authority!r}") from None
    now = timezone.now()
    base: CrlPublication | None = None
    if kind == CrlKind.DELTA:
        base = ca.crls.filter(kind=CrlKind.FULL).order_by("-number").first()
        if base is None:
            raise Conflict(f"CA {authority} has no full CRL yet: publish a full CRL first")
        revoked = _delta_entries(ca.pk, base.as_of)
        hours = ca.delta_crl_next_update_hours
    else:
        revoked = _full_entries(ca.pk)
        hours = ca.crl_next_update_hours
    number = ca.crl_number + 1
    next_update = now + dt.timedelta(hours=hours)
    with _translated():
        issuer = _issuer(ca)
        crl = builders.build_crl_from_revoked(
            issuer_certificate=issuer.certificate,
            signing_key=issuer.key,
            revoked=revoked,
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
        this_update=crl.last_update_utc,
        next_update=next_update.replace(microsecond=0),
        as_of=now,
        entry_count=len(revoked),
        der=crl.public_bytes(serialization.Encoding.DER),
    )
    audit_event_create(
        actor=actor,
        action="pki.crl_publish",
        object_type="pki.crl",
        object_id=str(publication.pk),
        details={"authority": authority, "kind": kind, "number": number, "entries": len(revoked)},
    )
    return publication


# --- OCSP ------------------------------------------------------------------------------------


def ocsp_responses_refresh(
    *,
    actor: Actor,
    certificate_ids: Iterable[int] | None = None,
    authority: str | None = None,
    chunk_size: int = 500,
) -> int:
    """Pre-sign the OCSP answer of the given certificates (or all of a CA, or all).

    Rows are locked while their answer is signed, so a redelivered or late task re-reads the
    newest status and can never write an older one over a newer one.
    """
    qs = Certificate.objects.exclude(profile="ocsp_responder").order_by("pk")
    if certificate_ids is not None:
        qs = qs.filter(pk__in=list(certificate_ids))
    if authority is not None:
        qs = qs.filter(issuer__short_name=authority)
    ids = list(qs.values_list("pk", flat=True))
    done = 0
    for start in range(0, len(ids), chunk_size):
        done += _refresh_chunk(ids[start : start + chunk_size], actor)
    return done


@transaction.atomic
def _refresh_chunk(ids: list[int], actor: Actor) -> int:
    certs = list(Certificate.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    responders: dict[int, tuple[x509.Certificate, x509.Certificate, rsa.RSAPrivateKey, int]] = {}
    rows: list[OcspResponse] = []
    now = timezone.now()
    with _translated():
        for cert in certs:
            if cert.issuer_id not in responders:
                ca = CertificateAuthority.objects.select_related("ocsp_responder").get(
                    pk=cert.issuer_id
                )
                if ca.ocsp_responder is None:
                    continue
                responder_key = key_backend_get(ca.key_backend).private_key(ca.ocsp_key_handle)
                responders[cert.issuer_id] = (
                    _ca_certificate(ca),
                    x509.load_der_x509_certificate(bytes(ca.ocsp_responder.der)),
                    responder_key,
                    ca.ocsp_validity_hours,
                )
            issuer_cert, responder_cert, responder_key, hours = responders[cert.issuer_id]
            status, revoked_at, reason = _ocsp_status(cert)
            next_update = now + dt.timedelta(hours=hours)
            response = builders.build_ocsp_response(
                issuer_certificate=issuer_cert,
                serial=int(cert.serial),
                status=status,
                responder_certificate=responder_cert,
                responder_key=responder_key,
                this_update=now,
                next_update=next_update,
                revoked_at=revoked_at,
                reason=reason,
            )
            rows.append(
                OcspResponse(
                    certificate=cert,
                    authority_id=cert.issuer_id,
                    serial=cert.serial,
                    status=cert.status,
                    this_update=now.replace(microsecond=0),
                    next_update=next_update.replace(microsecond=0),
                    der=response.public_bytes(serialization.Encoding.DER),
                )
            )
    OcspResponse.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["certificate"],
        update_fields=["status", "this_update", "next_update", "der"],
    )
    if rows:
        audit_event_create(
            actor=actor,
            action="pki.ocsp_responses_refresh",
            object_type="pki.ocsp",
            object_id=str(rows[0].certificate_id),
            details={"count": len(rows), "first_id": ids[0], "last_id": ids[-1]},
        )
    return len(rows)


def _ocsp_status(
    cert: Certificate,
) -> tuple[builders.OcspStatus, dt.datetime | None, RevocationReason | None]:
    if cert.status == CertificateStatus.REVOKED:
        return builders.OcspStatus.REVOKED, cert.revoked_at, _REASONS[cert.revocation_reason]
    if cert.status == CertificateStatus.ON_HOLD:
        return builders.OcspStatus.REVOKED, cert.hold_since, RevocationReason.CERTIFICATE_HOLD
    return builders.OcspStatus.GOOD, None, None


# --- hierarchy (pki_init) ----------------------------------------------------------------------


def _ensure_key(backend_alias: str, label: str, key_size: int) -> str:
    backend = key_backend_get(backend_alias)
    handle = backend.handle_for(label)
    # A key left by an interrupted run is reused: the CA row is what makes a CA exist.
    if backend.has_key(handle):
        return handle
    return backend.generate_rsa(label=label, key_size=key_size)


def _ca_profile(config: HierarchyConfig, auth: AuthorityConfig) -> Profile:
    prof = PROFILES["ca_root" if auth.kind == "root" else "ca_issuing"]
    if config.allow_small_ca_keys:
        prof = prof.with_key_sizes(prof.rsa_key_sizes | {2048, 3072})
    return prof


def hierarchy_init(*, config: HierarchyConfig, backend: str, actor: Actor) -> list[str]:
    """Create what is missing of the configured hierarchy; return what was created."""
    created: list[str] = []
    with _translated():
        key_backend_get(backend).check()
        for auth in config.authorities:
            ca = CertificateAuthority.objects.filter(short_name=auth.short_name).first()
            if ca is None:
                ca = _authority_create(config=config, auth=auth, backend=backend, actor=actor)
                created.append(auth.short_name)
            if ca.kind == CaKind.ISSUING and ca.ocsp_responder_id is None:
                _responder_create(config=config, ca=ca, actor=actor)
                created.append(f"{auth.short_name} OCSP responder")
    return created


def _authority_create(
    *, config: HierarchyConfig, auth: AuthorityConfig, backend: str, actor: Actor
) -> CertificateAuthority:
    handle = _ensure_key(backend, auth.short_name, auth.key_size)
    key = key_backend_get(backend).private_key(handle)
    subject = names.ca_name(
        common_name=auth.common_name,
        organisation=config.organisation,
        organisation_units=config.organisation_units,
    )
    profile_name = "ca_root" if auth.kind == "root" else "ca_issuing"
    with transaction.atomic():
        parent = None
        issuer = None
        if auth.parent is not None:
            parent = CertificateAuthority.objects.select_for_update().get(short_name=auth.parent)
            issuer = _issuer(parent)
        cert = builders.build_certificate(
            profile=_ca_profile(config, auth),
            public_key=key.public_key(),
            subject=subject,
            serial=builders.random_serial(secrets.token_bytes),
            now=timezone.now(),
            issuer=issuer,
            self_signing_key=key if issuer is None else None,
            policies=auth.policies.get(profile_name, ()),
        )
        name_hash, key_hash = builders.issuer_hashes(cert)
        ca = CertificateAuthority.objects.create(
            short_name=auth.short_name,
            common_name=auth.common_name,
            kind=auth.kind,
            parent=parent,
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
            },
        )
    return ca


def _responder_create(*, config: HierarchyConfig, ca: CertificateAuthority, actor: Actor) -> None:
    label = f"{ca.short_name}-ocsp"
    handle = _ensure_key(ca.key_backend, label, config.responder_key_size)
    key = key_backend_get(ca.key_backend).private_key(handle)
    with transaction.atomic():
        ca = CertificateAuthority.objects.select_for_update().get(pk=ca.pk)
        if ca.ocsp_responder_id is not None:
            return
        now = timezone.now()
        cert = builders.build_certificate(
            profile=PROFILES["ocsp_responder"],
            public_key=key.public_key(),
            subject=names.technical_subject(
                common_name=f"OCSP {ca.short_name}", organisation=config.organisation
            ),
            serial=builders.random_serial(secrets.token_bytes),
            now=now,
            issuer=_issuer(ca),
        )
        row = _store(
            ca=ca, cert=cert, profile="ocsp_responder", holder=None, on_hold=False, now=now
        )
        ca.ocsp_responder = row
        ca.ocsp_key_handle = handle
        ca.save(update_fields=["ocsp_responder", "ocsp_key_handle"])
        audit_event_create(
            actor=actor,
            action="pki.ocsp_responder_create",
            object_type="pki.certificate",
            object_id=str(row.pk),
            details={"authority": ca.short_name, "serial": format(cert.serial_number, "x")},
        )


def holder_from_options(options: dict[str, object]) -> names.Holder | None:
    """Holder fields given on a command line (``None`` when none were given)."""
    keys = ("national_id", "surname", "given_name", "title", "card_serial")
    if not any(options.get(k) for k in keys):
        return None
    profession = options.get("profession_code")
    card_type = options.get("card_type")
    return names.Holder(
        national_id=str(options.get("national_id") or ""),
        surname=str(options.get("surname") or ""),
        given_name=str(options.get("given_name") or ""),
        title=str(options.get("title") or ""),
        card_serial=str(options.get("card_serial") or ""),
        profession_code=int(str(profession)) if profession is not None else None,
        card_type=CardType(int(str(card_type))) if card_type is not None else CardType.CPS,
        email=str(options["email"]) if options.get("email") else None,
        organisation=str(options["organisation"]) if options.get("organisation") else None,
        organisation_unit=(
            str(options["organisation_unit"]) if options.get("organisation_unit") else None
        ),
        state=str(options["state"]) if options.get("state") else None,
    )
