"""CMS SignedData (RFC 5652) over a document, as off-the-shelf tools verify it
(``openssl cms -verify``): the content attached, SHA-256, the signer's certificate and its chain
included."""

from __future__ import annotations

from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7


def signed_data(
    content: bytes,
    *,
    certificate: x509.Certificate,
    key: rsa.RSAPrivateKey,
    chain: Iterable[x509.Certificate] = (),
) -> bytes:
    """The DER of a SignedData carrying ``content`` signed by ``key`` (RSA PKCS#1 v1.5,
    SHA-256, signed attributes with the signing time), with ``certificate`` and ``chain``."""
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content)
    builder = builder.add_signer(certificate, key, hashes.SHA256())
    for extra in chain:
        builder = builder.add_certificate(extra)
    return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
