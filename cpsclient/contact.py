"""``contact-auth``: the strong contact authentication, as any relying party does it with
standard middleware: OpenSC's PKCS#11 module, the holder's PIN, a fresh challenge signed by the
card's authentication key, the signature checked with the authentication certificate, and the
certificate verified to the pinned root with its issuer (from the certificate's caIssuers URL)
and its status by OCSP (``openssl verify`` and ``openssl ocsp``)."""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from cpsclient.errors import ClientError

MODULE_LOCATIONS = (
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
)


# The CPS card number extension: PrintableString "8025000001/<10-digit card serial>"
CARD_NUMBER_OID = x509.ObjectIdentifier("1.2.250.1.71.1.2.3")


@dataclass(frozen=True, slots=True)
class ContactProof:
    card_number: str  # from the certificate (CPS card number extension), else the token serial
    subject: str
    certificate: x509.Certificate


def _module(path: str | None) -> str:
    for candidate in (path, *MODULE_LOCATIONS):
        if candidate and Path(candidate).exists():
            return candidate
    raise ClientError("OpenSC's PKCS#11 module was not found: install opensc or give --module")


def _aia(certificate: x509.Certificate, method: x509.ObjectIdentifier) -> str | None:
    try:
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except x509.ExtensionNotFound:
        return None
    for description in access.value:
        if description.access_method == method:
            return str(description.access_location.value)
    return None


def card_number_of(certificate: x509.Certificate, *, token_serial: str) -> str:
    """The 20-digit card number the certificate names. A PKCS#11 token serial is 16 characters
    at most, so OpenSC's is the card number cut short: it serves only when the extension is
    absent."""
    try:
        value = certificate.extensions.get_extension_for_oid(CARD_NUMBER_OID).value
    except x509.ExtensionNotFound:
        return token_serial
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    if len(raw) >= 2 and raw[0] == 0x13 and raw[1] == len(raw) - 2:  # short PrintableString
        return raw[2:].decode("ascii").replace("/", "")
    return token_serial


def certificate_check(certificate: x509.Certificate, *, ca_file: Path) -> None:
    """Chain to the pinned root (issuer fetched from caIssuers) and OCSP status ``good``."""
    issuer_url = _aia(certificate, AuthorityInformationAccessOID.CA_ISSUERS)
    ocsp_url = _aia(certificate, AuthorityInformationAccessOID.OCSP)
    if issuer_url is None or ocsp_url is None:
        raise ClientError("the certificate names no issuer or OCSP responder")
    with urllib.request.urlopen(issuer_url, timeout=30) as response:  # noqa: S310
        issuer = x509.load_der_x509_certificate(response.read())
    with tempfile.TemporaryDirectory() as tmp:
        cert_pem, issuer_pem = Path(tmp) / "cert.pem", Path(tmp) / "issuer.pem"
        cert_pem.write_bytes(certificate.public_bytes(Encoding.PEM))
        issuer_pem.write_bytes(issuer.public_bytes(Encoding.PEM))
        chain = subprocess.run(
            ["openssl", "verify", "-CAfile", str(ca_file), "-untrusted", str(issuer_pem),
             "-purpose", "sslclient", str(cert_pem)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if chain.returncode != 0:
            raise ClientError(f"certificate chain refused: {chain.stdout}{chain.stderr}".strip())
        chain_file = Path(tmp) / "chain.pem"
        chain_file.write_bytes(issuer_pem.read_bytes() + Path(ca_file).read_bytes())
        status = subprocess.run(
            ["openssl", "ocsp", "-issuer", str(issuer_pem), "-cert", str(cert_pem),
             "-CAfile", str(chain_file), "-url", ocsp_url, "-no_nonce"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if status.returncode != 0 or f"{cert_pem}: good" not in status.stdout:
        found = [line for line in status.stdout.splitlines() if line.startswith(str(cert_pem))]
        raise ClientError(f"certificate status is not good: {' '.join(found) or status.stderr}")


def contact_auth(*, module: str | None, pin: str, ca_file: Path) -> ContactProof:
    """PIN, a challenge signed by the authentication key (the certificate with the client
    authentication usage), signature and certificate checked."""
    import pkcs11
    from pkcs11 import Attribute, Mechanism, ObjectClass
    from pkcs11.exceptions import PKCS11Error

    challenge = secrets.token_bytes(32)
    lib = pkcs11.lib(_module(module))
    try:
        slots = lib.get_slots(token_present=True)
        if not slots:
            raise ClientError("no card in a contact reader")
        token = slots[0].get_token()
        serial = (
            token.serial.decode().strip()
            if isinstance(token.serial, bytes)
            else str(token.serial).strip()
        )
        with token.open(user_pin=pin) as session:
            chosen = None
            for obj in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}):
                cert = x509.load_der_x509_certificate(obj[Attribute.VALUE])
                try:
                    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
                except x509.ExtensionNotFound:
                    continue
                if ExtendedKeyUsageOID.CLIENT_AUTH in list(usages):
                    chosen = (cert, obj[Attribute.ID])
                    break
            if chosen is None:
                raise ClientError("the card holds no authentication certificate")
            certificate, key_id = chosen
            key: Any = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id)
            signature = key.sign(challenge, mechanism=Mechanism.SHA256_RSA_PKCS)
    except PKCS11Error as exc:
        raise ClientError(
            f"PKCS#11: {type(exc).__name__} (wrong PIN, blocked or no card?)"
        ) from None
    public = certificate.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise ClientError("the authentication certificate is not RSA")
    try:
        public.verify(signature, challenge, padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        raise ClientError("the card's signature does not match its certificate") from None
    certificate_check(certificate, ca_file=ca_file)
    number = card_number_of(certificate, token_serial=serial)
    return ContactProof(number, certificate.subject.rfc4514_string(), certificate)


def add_contact_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--module", help="PKCS#11 module (default: OpenSC's)")
    parser.add_argument("--ca-file", required=True, help="the pinned root CA (PEM)")
    parser.add_argument(
        "--pin-env", help="name of an environment variable holding the PIN (else it is asked)"
    )


def contact_auth_from_args(args: argparse.Namespace) -> ContactProof:
    pin = os.environ.get(args.pin_env, "") if args.pin_env else getpass.getpass("PIN: ")
    if not pin:
        raise ClientError("no PIN given")
    return contact_auth(module=args.module, pin=pin, ca_file=Path(args.ca_file))


def _command(args: argparse.Namespace) -> int:
    proof = contact_auth_from_args(args)
    print(f"AUTHENTICATED card {proof.card_number}: {proof.subject}")
    return 0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "contact-auth", help="PIN + challenge signed by the card, certificate to root with OCSP"
    )
    add_contact_arguments(parser)
    parser.set_defaults(func=_command)
