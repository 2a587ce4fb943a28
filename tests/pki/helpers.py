"""Helpers of the PKI tests: holders, CSRs and the OpenSSL command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from pki.domain.names import Holder
from tests.pki.keys_pool import rsa_key

ISSUING = "ACI-FO-PP-TEST"
ROOT = "ACR-FO-TEST"
TECH = "ACI-FO-TECH-TEST"


def holder(n: int = 1) -> Holder:
    return Holder(
        national_id=f"8100028138{n:02d}",
        surname="DONNAT-GADY",
        given_name="ISABELLE",
        title="Médecin",
        card_serial=f"26003017{n:02d}",
        profession_code=10,
        email=f"holder{n}@example.org",
    )


def csr_pem(key_name: str = "holder", common_name: str = "ignored") -> bytes:
    key = rsa_key(key_name)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def pem(der: bytes | memoryview, kind: str = "CERTIFICATE") -> bytes:
    if kind == "CERTIFICATE":
        return x509.load_der_x509_certificate(bytes(der)).public_bytes(serialization.Encoding.PEM)
    return x509.load_der_x509_crl(bytes(der)).public_bytes(serialization.Encoding.PEM)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the OpenSSL command line; the caller asserts on return code and output."""
    return subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )
