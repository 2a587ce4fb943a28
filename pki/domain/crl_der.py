"""CRLs assembled from already encoded entries (RFC 5280 §5.1), signed through any key backend.

Each CRL entry (``revokedCertificates`` element) is encoded once, when its certificate's status
changes, and stored with the certificate; a CRL is then the concatenation of the stored entries
inside a TBSCertList written here, and one signature. The output is byte-identical to
``cryptography``'s ``CertificateRevocationListBuilder`` for the same entries, in the same order,
with the same extensions (tests/pki/domain/test_crl_der.py); see docs/adr/0003-crl-assembled-from-
stored-entries.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from pki.domain import der
from pki.domain.errors import ProfileViolation
from pki.domain.reasons import RevocationReason

# RFC 5280 §5.3.1 reason codes (7 is unused)
REASON_CODES: dict[RevocationReason, int] = {
    RevocationReason.UNSPECIFIED: 0,
    RevocationReason.KEY_COMPROMISE: 1,
    RevocationReason.CA_COMPROMISE: 2,
    RevocationReason.AFFILIATION_CHANGED: 3,
    RevocationReason.SUPERSEDED: 4,
    RevocationReason.CESSATION_OF_OPERATION: 5,
    RevocationReason.CERTIFICATE_HOLD: 6,
    RevocationReason.REMOVE_FROM_CRL: 8,
    RevocationReason.PRIVILEGE_WITHDRAWN: 9,
    RevocationReason.AA_COMPROMISE: 10,
}
_CRL_REASON_OID = der.encode_oid("2.5.29.21")
_VERSION_2 = der.encode_integer(1)
# AlgorithmIdentifier of the signatures we make: sha256WithRSAEncryption (NULL parameters, as
# RFC 4055 §5 asks) and ecdsa-with-SHA256 (no parameters, RFC 5758 §3.2).
_SHA256_WITH_RSA = der.sequence(der.encode_oid("1.2.840.113549.1.1.11"), der.tlv(der.TAG_NULL, b""))
_ECDSA_WITH_SHA256 = der.sequence(der.encode_oid("1.2.840.10045.4.3.2"))


def _extension(oid: str, critical: bool, value: bytes) -> bytes:
    parts = [der.encode_oid(oid)]
    if critical:  # DEFAULT FALSE is left out in DER
        parts.append(der.encode_boolean(True))
    parts.append(der.encode_octet_string(value))
    return der.sequence(*parts)


def crl_entry(serial: int, revoked_at: dt.datetime, reason: RevocationReason) -> bytes:
    """One ``revokedCertificates`` element; ``unspecified`` is left implicit (RFC 5280 §5.3.1)."""
    if serial < 0:
        raise ValueError("a serial number is positive")
    parts = [der.encode_integer(serial), der.encode_time(revoked_at.replace(microsecond=0))]
    if reason is not RevocationReason.UNSPECIFIED:
        value = der.encode_enumerated(REASON_CODES[reason])
        parts.append(der.sequence(_extension("2.5.29.21", False, value)))
    return der.sequence(*parts)


def crl_extensions(extensions: Iterable[x509.Extension[x509.ExtensionType]]) -> bytes:
    """``crlExtensions``: ``[0] EXPLICIT Extensions``."""
    encoded = [
        _extension(e.oid.dotted_string, e.critical, e.value.public_bytes()) for e in extensions
    ]
    return der.tlv(0xA0, der.sequence(*encoded))


def signature_algorithm(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    """The AlgorithmIdentifier of a SHA-256 signature by ``key``."""
    if isinstance(key, rsa.RSAPrivateKey):
        return _SHA256_WITH_RSA
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return _ECDSA_WITH_SHA256
    raise ProfileViolation("crl.signing_key", f"unsupported CRL signing key {type(key).__name__}")


def tbs_cert_list(
    *,
    algorithm: bytes,
    issuer_name: bytes,
    this_update: dt.datetime,
    next_update: dt.datetime,
    entries: bytes,
    extensions: bytes,
) -> bytes:
    """TBSCertList (v2) around ``entries``, the concatenated DER of the revoked entries."""
    parts = [
        _VERSION_2,
        algorithm,
        issuer_name,
        der.encode_time(this_update.replace(microsecond=0)),
        der.encode_time(next_update.replace(microsecond=0)),
    ]
    if entries:  # an empty revokedCertificates is absent, not an empty SEQUENCE
        parts.append(der.tlv(der.TAG_SEQUENCE, entries))
    parts.append(extensions)
    return der.sequence(*parts)


def sign(tbs: bytes, key: CertificateIssuerPrivateKeyTypes) -> bytes:
    """The signature value of ``tbs`` (RSA PKCS#1 v1.5 or ECDSA, SHA-256)."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    raise ProfileViolation("crl.signing_key", f"unsupported CRL signing key {type(key).__name__}")


def certificate_list(tbs: bytes, algorithm: bytes, signature: bytes) -> bytes:
    """CertificateList: the TBSCertList, its algorithm and its signature."""
    return der.sequence(tbs, algorithm, der.encode_bit_string(signature))
