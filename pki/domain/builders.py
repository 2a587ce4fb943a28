"""Certificate, CRL and OCSP response builders (pure: time, randomness and keys are passed in).

Longer than our ~500-line mark on purpose: the three signed artifacts share the issuer, its
signature algorithm and its revocation URLs, and every caller reads them as one ``builders``
namespace. The OCSP half is the part to move out (to ``pki.domain.ocsp``) when a fourth artifact
arrives; the wire encodings already live apart (``der``, ``crl_der``, ``extensions``).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from cards.products import add_years  # the one calendar rule of card and certificate validity
from pki.domain import crl_der, der, extensions
from pki.domain.errors import MalformedRequest, MultipleCertificates, ProfileViolation
from pki.domain.names import Holder
from pki.domain.profiles import MS_UPN, UPN_DOMAIN, Profile, SanKind, validate_request
from pki.domain.reasons import RevocationReason
from pki.domain.status import OcspStatus

SIGNATURE_HASH = hashes.SHA256()
SERIAL_BITS = 159  # 20 octets in DER, always positive, far above the 127-bit floor


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """One certificatePolicies entry."""

    oid: str
    cps_uri: str | None = None


@dataclass(frozen=True, slots=True)
class RevocationUrls:
    """Where relying parties find the status of certificates issued by one CA."""

    crl: str
    delta_crl: str
    ocsp: str
    ca_issuers: str


@dataclass(frozen=True, slots=True)
class Issuer:
    """An issuing CA as the builders need it."""

    certificate: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes
    urls: RevocationUrls


def random_serial(rng: Callable[[int], bytes]) -> int:
    """A positive serial with ``SERIAL_BITS`` bits, the top one set, from ``rng(n) -> n bytes``."""
    raw = int.from_bytes(rng(20), "big")
    return (raw & ((1 << (SERIAL_BITS - 1)) - 1)) | (1 << (SERIAL_BITS - 1))


def validity_window(profile: Profile, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``(not_before, not_after)`` of a certificate issued at ``now`` (seconds precision)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    start = now.astimezone(dt.UTC).replace(microsecond=0)
    if profile.validity_years is not None:
        return start, add_years(start, profile.validity_years)
    return start, start + dt.timedelta(days=profile.validity_days)


def _key_usage(names: frozenset[str]) -> x509.KeyUsage:
    flags = {
        name: name in names
        for name in (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
        )
    }
    return x509.KeyUsage(encipher_only=False, decipher_only=False, **flags)


def _policies(policies: Iterable[PolicySpec]) -> x509.CertificatePolicies:
    infos = []
    for spec in policies:
        qualifiers: list[str | x509.UserNotice] | None = [spec.cps_uri] if spec.cps_uri else None
        infos.append(x509.PolicyInformation(x509.ObjectIdentifier(spec.oid), qualifiers))
    return x509.CertificatePolicies(infos)


def _uri(url: str) -> x509.UniformResourceIdentifier:
    return x509.UniformResourceIdentifier(url)


_Extensions = tuple[x509.Extension[x509.ExtensionType], ...]


def _extension(value: x509.ExtensionType, critical: bool) -> x509.Extension[x509.ExtensionType]:
    return x509.Extension(value.oid, critical, value)


@dataclass(frozen=True, slots=True)
class _Fixed:
    """The extensions of one profile that its issuer, policies and category decide alone, in the
    certificate's order around the ones each certificate has of its own."""

    basic_constraints: _Extensions
    aki: _Extensions  # from the issuer's SKI (empty: self-signed, from the signing key)
    usage: _Extensions  # key usage, certificate policies, extended key usage
    pointers: _Extensions  # CRL DP, freshest CRL, AIA, OCSP no-check
    category: _Extensions  # the product category (private extensions, with a holder)


@functools.lru_cache(maxsize=64)
def _fixed(
    profile: Profile,
    issuer: x509.Certificate | None,
    urls: RevocationUrls | None,
    policies: tuple[PolicySpec, ...],
    category: extensions.ProductCategory,
) -> _Fixed:
    """Built once per process for each (profile, issuer, policies, category): a card's two
    certificates differ only in their key, subject, holder data, serial and dates, and building
    the rest each time was most of the Python half of ``build_certificate`` (issue 12)."""
    aki: _Extensions = ()
    if issuer is not None:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        aki = (
            _extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value), False
            ),
        )
    usage = [_extension(_key_usage(profile.key_usage), True)]
    if policies:
        usage.append(_extension(_policies(policies), False))
    if profile.extended_key_usages:
        usage.append(_extension(x509.ExtendedKeyUsage(list(profile.extended_key_usages)), False))
    pointers = []
    if urls is not None and profile.revocation_pointers:
        pointers.append(
            _extension(
                x509.CRLDistributionPoints(
                    [x509.DistributionPoint([_uri(urls.crl)], None, None, None)]
                ),
                False,
            )
        )
        if not profile.is_ca:
            pointers.append(
                _extension(
                    x509.FreshestCRL(
                        [x509.DistributionPoint([_uri(urls.delta_crl)], None, None, None)]
                    ),
                    False,
                )
            )
        access = [
            x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, _uri(urls.ca_issuers))
        ]
        if not profile.is_ca:
            access.insert(
                0, x509.AccessDescription(AuthorityInformationAccessOID.OCSP, _uri(urls.ocsp))
            )
        pointers.append(_extension(x509.AuthorityInformationAccess(access), False))
    if profile.ocsp_nocheck:
        pointers.append(_extension(x509.OCSPNoCheck(), False))
    return _Fixed(
        basic_constraints=(
            _extension(
                x509.BasicConstraints(ca=profile.is_ca, path_length=profile.path_length),
                profile.is_ca,
            ),
        ),
        aki=aki,
        usage=tuple(usage),
        pointers=tuple(pointers),
        category=(
            (_extension(extensions.product_category(category), False),)
            if profile.private_extensions
            else ()
        ),
    )


def build_certificate(
    *,
    profile: Profile,
    public_key: CertificatePublicKeyTypes,
    subject: x509.Name,
    serial: int,
    now: dt.datetime,
    issuer: Issuer | None,
    self_signing_key: CertificateIssuerPrivateKeyTypes | None = None,
    holder: Holder | None = None,
    policies: Iterable[PolicySpec] = (),
    category: extensions.ProductCategory = extensions.ProductCategory.TEST_CARD,
) -> x509.Certificate:
    """Validate the request against ``profile`` and sign the certificate.

    ``issuer=None`` makes a self-signed certificate with ``self_signing_key`` (a root). The
    extensions go to the builder as one list (``add_extension`` copies the list each time), in
    the order they always had; no two of them share an OID.
    """
    not_before, not_after = validity_window(profile, now)
    validate_request(
        profile,
        public_key=public_key,
        holder=holder,
        not_after=not_after,
        issuer_not_after=issuer.certificate.not_valid_after_utc if issuer else None,
    )
    if issuer is None:
        if self_signing_key is None or not profile.is_ca:
            raise ProfileViolation("issuer.required", "only a CA profile may be self-signed")
        signing_key = self_signing_key
        issuer_name = subject
        fixed = _fixed(profile, None, None, tuple(policies), category)
        aki: _Extensions = (
            _extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self_signing_key.public_key()),
                False,
            ),
        )
    else:
        signing_key = issuer.key
        issuer_name = issuer.certificate.subject
        fixed = _fixed(profile, issuer.certificate, issuer.urls, tuple(policies), category)
        aki = fixed.aki
    exts: list[x509.Extension[x509.ExtensionType]] = [
        *fixed.basic_constraints,
        _extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False),
        *aki,
        *fixed.usage,
    ]
    if holder is not None and profile.san is SanKind.UPN:
        upn = f"{holder.national_id}@{UPN_DOMAIN}"
        san = x509.SubjectAlternativeName([x509.OtherName(MS_UPN, der.encode_utf8_string(upn))])
        exts.append(_extension(san, False))
    elif holder is not None and profile.san is SanKind.EMAIL:
        assert holder.email is not None
        exts.append(_extension(x509.SubjectAlternativeName([x509.RFC822Name(holder.email)]), False))
    if profile.private_key_usage_period:
        exts.append(_extension(x509.PrivateKeyUsagePeriod(not_before, not_after), False))
    exts += fixed.pointers
    if profile.private_extensions and holder is not None:
        exts += fixed.category
        exts.append(_extension(extensions.card_type(holder.card_type), False))
        exts.append(_extension(extensions.card_number(holder.card_serial), False))
        if holder.profession_code is not None:
            exts.append(_extension(extensions.profession(holder.profession_code), False))
    builder = (
        x509.CertificateBuilder(extensions=exts)
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    return builder.sign(signing_key, SIGNATURE_HASH)


# --- CRLs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CrlEntry:
    """One revoked (or, in a delta, released) serial."""

    serial: int
    revoked_at: dt.datetime
    reason: RevocationReason


def revoked_certificate(entry: CrlEntry) -> x509.RevokedCertificate:
    """The CRL entry; ``unspecified`` is left implicit as RFC 5280 §5.3.1 asks."""
    builder = (
        x509.RevokedCertificateBuilder()
        .serial_number(entry.serial)
        .revocation_date(entry.revoked_at.replace(microsecond=0))
    )
    if entry.reason is not RevocationReason.UNSPECIFIED:
        builder = builder.add_extension(x509.CRLReason(entry.reason.to_x509()), critical=False)
    return builder.build()


def build_crl(
    *,
    issuer_certificate: x509.Certificate,
    signing_key: CertificateIssuerPrivateKeyTypes,
    entries: Iterable[CrlEntry],
    number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
    delta_base: int | None = None,
    freshest_crl_url: str | None = None,
) -> x509.CertificateRevocationList:
    """A full CRL, or a delta CRL when ``delta_base`` is the number of its base full CRL.

    The whole list goes to the builder at once: adding entries one at a time copies the list
    each time (quadratic).
    """
    revoked: list[x509.RevokedCertificate] = []
    for entry in entries:
        if entry.reason is RevocationReason.REMOVE_FROM_CRL and delta_base is None:
            raise ProfileViolation(
                "crl.remove_from_crl", "removeFromCRL only appears in a delta CRL"
            )
        revoked.append(revoked_certificate(entry))
    return build_crl_from_revoked(
        issuer_certificate=issuer_certificate,
        signing_key=signing_key,
        revoked=revoked,
        number=number,
        this_update=this_update,
        next_update=next_update,
        delta_base=delta_base,
        freshest_crl_url=freshest_crl_url,
    )


def build_crl_from_revoked(
    *,
    issuer_certificate: x509.Certificate,
    signing_key: CertificateIssuerPrivateKeyTypes,
    revoked: list[x509.RevokedCertificate],
    number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
    delta_base: int | None = None,
    freshest_crl_url: str | None = None,
) -> x509.CertificateRevocationList:
    """Sign a CRL over already built entries (one builder call)."""
    exts = crl_extension_list(
        issuer_certificate=issuer_certificate,
        number=number,
        delta_base=delta_base,
        freshest_crl_url=freshest_crl_url,
    )
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=issuer_certificate.subject,
        last_update=this_update.replace(microsecond=0),
        next_update=next_update.replace(microsecond=0),
        extensions=exts,
        revoked_certificates=revoked,
    )
    return builder.sign(signing_key, SIGNATURE_HASH)


def crl_extension_list(
    *,
    issuer_certificate: x509.Certificate,
    number: int,
    delta_base: int | None = None,
    freshest_crl_url: str | None = None,
) -> list[x509.Extension[x509.ExtensionType]]:
    """AKI, CRL number, and the delta CRL indicator (delta) or freshest CRL pointer (full)."""
    if delta_base is not None and delta_base >= number:
        raise ProfileViolation("crl.delta_base", "a delta CRL's base must precede its number")
    ski = issuer_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    exts: list[x509.Extension[x509.ExtensionType]] = [
        x509.Extension(
            x509.AuthorityKeyIdentifier.oid,
            False,
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value),
        ),
        x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number)),
    ]
    if delta_base is not None:
        exts.append(
            x509.Extension(x509.DeltaCRLIndicator.oid, True, x509.DeltaCRLIndicator(delta_base))
        )
    elif freshest_crl_url:
        exts.append(
            x509.Extension(
                x509.FreshestCRL.oid,
                False,
                x509.FreshestCRL(
                    [x509.DistributionPoint([_uri(freshest_crl_url)], None, None, None)]
                ),
            )
        )
    return exts


def assemble_crl(
    *,
    issuer_certificate: x509.Certificate,
    signing_key: CertificateIssuerPrivateKeyTypes,
    entries: bytes,
    number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
    delta_base: int | None = None,
    freshest_crl_url: str | None = None,
) -> bytes:
    """The DER CRL over ``entries``, the concatenated DER of already encoded CRL entries
    (:func:`pki.domain.crl_der.crl_entry`): the same bytes :func:`build_crl_from_revoked` gives
    for the same entries, without decoding them."""
    algorithm = crl_der.signature_algorithm(signing_key)
    tbs = crl_der.tbs_cert_list(
        algorithm=algorithm,
        issuer_name=issuer_certificate.subject.public_bytes(),
        this_update=this_update,
        next_update=next_update,
        entries=entries,
        extensions=crl_der.crl_extensions(
            crl_extension_list(
                issuer_certificate=issuer_certificate,
                number=number,
                delta_base=delta_base,
                freshest_crl_url=freshest_crl_url,
            )
        ),
    )
    return crl_der.certificate_list(tbs, algorithm, crl_der.sign(tbs, signing_key))


# --- OCSP -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OcspQuery:
    """The one CertID of a request, plus its nonce if any."""

    hash_algorithm: str
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int
    nonce: bytes | None


CERT_ID_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),  # noqa: S303 - RFC 5019 CertIDs use SHA-1
    "sha224": hashes.SHA224(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


def _subject_public_key_bits(certificate: x509.Certificate) -> bytes:
    """The contents of the subjectPublicKey BIT STRING (what an issuerKeyHash hashes)."""
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    raise ProfileViolation("ocsp.issuer_key", f"unsupported issuer key {type(key).__name__}")


@functools.lru_cache(maxsize=64)
def issuer_hashes(
    issuer_certificate: x509.Certificate, algorithm: str = "sha1"
) -> tuple[bytes, bytes]:
    """``(issuerNameHash, issuerKeyHash)`` of a CA as a CertID with ``algorithm`` holds them.

    Kept per process: every pre-signed answer of a CA has the same two (62 us an answer)."""
    try:
        hash_algorithm = CERT_ID_HASHES[algorithm]
    except KeyError:
        raise MalformedRequest(f"unsupported CertID hash algorithm {algorithm!r}") from None
    name_digest = hashes.Hash(hash_algorithm)
    name_digest.update(issuer_certificate.subject.public_bytes())
    key_digest = hashes.Hash(hash_algorithm)
    key_digest.update(_subject_public_key_bits(issuer_certificate))
    return name_digest.finalize(), key_digest.finalize()


@dataclass(frozen=True, slots=True)
class OcspSigner:
    """A delegated responder of one CA: what signing an answer needs, prepared once."""

    issuer_certificate: x509.Certificate
    responder_certificate: x509.Certificate
    responder_key: CertificateIssuerPrivateKeyTypes


def build_ocsp_response(
    *,
    issuer_certificate: x509.Certificate,
    serial: int,
    status: OcspStatus,
    responder_certificate: x509.Certificate,
    responder_key: CertificateIssuerPrivateKeyTypes,
    this_update: dt.datetime,
    next_update: dt.datetime | None,
    revoked_at: dt.datetime | None = None,
    reason: RevocationReason | None = None,
    cert_id_hash: str = "sha1",
    nonce: bytes | None = None,
) -> ocsp.OCSPResponse:
    """A signed single-response OCSP answer.

    Pre-signed answers use SHA-1 CertIDs (RFC 5019) and no nonce; an answer signed for one
    request mirrors its CertID hash algorithm and echoes its nonce (RFC 6960 §4.4.1).
    """
    name_hash, key_hash = issuer_hashes(issuer_certificate, cert_id_hash)
    cert_status = {
        OcspStatus.GOOD: ocsp.OCSPCertStatus.GOOD,
        OcspStatus.REVOKED: ocsp.OCSPCertStatus.REVOKED,
        OcspStatus.UNKNOWN: ocsp.OCSPCertStatus.UNKNOWN,
    }[status]
    if status is OcspStatus.REVOKED and revoked_at is None:
        raise ProfileViolation("ocsp.revocation_time", "a revoked status needs its time")
    x509_reason = None
    if status is OcspStatus.REVOKED and reason not in (None, RevocationReason.UNSPECIFIED):
        assert reason is not None
        x509_reason = reason.to_x509()
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=name_hash,
            issuer_key_hash=key_hash,
            serial_number=serial,
            algorithm=CERT_ID_HASHES[cert_id_hash],
            cert_status=cert_status,
            this_update=this_update.replace(microsecond=0),
            next_update=next_update.replace(microsecond=0) if next_update else None,
            revocation_time=revoked_at.replace(microsecond=0) if revoked_at else None,
            revocation_reason=x509_reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder_certificate)
        .certificates([responder_certificate])
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.sign(responder_key, SIGNATURE_HASH)


@dataclass(frozen=True, slots=True)
class OcspAnswer:
    """A signed OCSP answer (DER) and the validity window written in it."""

    der: bytes
    this_update: dt.datetime
    next_update: dt.datetime


def ocsp_answer_sign(
    signer: OcspSigner,
    *,
    serial: int,
    status: OcspStatus,
    revoked_at: dt.datetime | None,
    reason: RevocationReason | None,
    now: dt.datetime,
    validity: dt.timedelta,
    cert_id_hash: str = "sha1",
    nonce: bytes | None = None,
) -> OcspAnswer:
    """The answer for one serial signed by a delegated responder, valid ``validity`` from ``now``.

    The one place both the pre-signed answers and the ones signed per request are made.
    """
    this_update = now.replace(microsecond=0)
    next_update = this_update + validity
    response = build_ocsp_response(
        issuer_certificate=signer.issuer_certificate,
        serial=serial,
        status=status,
        responder_certificate=signer.responder_certificate,
        responder_key=signer.responder_key,
        this_update=this_update,
        next_update=next_update,
        revoked_at=revoked_at,
        reason=reason,
        cert_id_hash=cert_id_hash,
        nonce=nonce,
    )
    return OcspAnswer(response.public_bytes(serialization.Encoding.DER), this_update, next_update)


def ocsp_error_response(status: ocsp.OCSPResponseStatus) -> bytes:
    """An unsigned error answer (malformedRequest, unauthorized, tryLater, ...)."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


def parse_ocsp_request(data: bytes) -> OcspQuery:
    """Decode a DER OCSP request holding exactly one CertID; :class:`MalformedRequest` else."""
    try:
        request = ocsp.load_der_ocsp_request(data)
        nonce: bytes | None
        try:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            nonce = None
        return OcspQuery(
            hash_algorithm=request.hash_algorithm.name,
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial=request.serial_number,
            nonce=nonce,
        )
    except NotImplementedError:
        # cryptography loads only single-certificate requests (RFC 5019 §2.1.1)
        raise MultipleCertificates("the OCSP request asks about several certificates") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise MalformedRequest(f"not a single-certificate DER OCSP request: {exc}") from None


def parse_csr(data: bytes) -> x509.CertificateSigningRequest:
    """Load a PEM or DER CSR and check its self-signature; :class:`MalformedRequest` else."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            csr = x509.load_pem_x509_csr(data)
        else:
            csr = x509.load_der_x509_csr(data)
    except ValueError:
        raise MalformedRequest("the CSR is not a valid PEM or DER PKCS#10 request") from None
    try:
        valid = csr.is_signature_valid
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        valid = False
    if not valid:
        raise MalformedRequest("the CSR signature does not verify against its public key")
    return csr
