"""Audit anchors: the chain head (seq, hash) signed with the audit key and published outside the
database (``pki.services.anchor`` signs; a file under the publication directory and
``/pki/audit-anchor.json`` publish). Whoever kept an anchor can later prove the chain up to it
was not rewritten: ``manage.py audit_verify --anchor FILE``.

The document is JSON: ``seq``, ``hash``, ``signed_at``, ``algorithm``, ``public_key`` (base64
DER SubjectPublicKeyInfo) and ``signature`` (base64, RSA PKCS#1 v1.5 SHA-256 over
:func:`anchor_payload`). This module only verifies: pure cryptography, no key backend.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ALGORITHM = "RSA-PKCS1v15-SHA256"


class AnchorError(ValueError):
    """An anchor that is malformed, wrongly signed, or signed by another key."""


@dataclass(frozen=True, slots=True)
class Anchor:
    seq: int
    hash: str
    signed_at: str
    key_sha256: str  # fingerprint of the signing public key (DER SPKI)


def anchor_payload(*, seq: int, head_hash: str, signed_at: str) -> bytes:
    """The bytes the signature covers (canonical JSON)."""
    document = {"seq": seq, "hash": head_hash, "signed_at": signed_at, "algorithm": ALGORITHM}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("ascii")


def anchor_verify(document: Mapping[str, Any], *, public_key_pem: bytes | None = None) -> Anchor:
    """Check an anchor's signature (with ``public_key_pem`` when given: the audit key kept
    apart; otherwise with the key the document carries) and return what it vouches for."""
    try:
        seq = int(document["seq"])
        head_hash = str(document["hash"])
        signed_at = str(document["signed_at"])
        embedded = base64.b64decode(str(document["public_key"]), validate=True)
        signature = base64.b64decode(str(document["signature"]), validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise AnchorError(f"malformed anchor: {exc}") from None
    if document.get("algorithm") != ALGORITHM or len(head_hash) != 64 or seq < 1:
        raise AnchorError("malformed anchor: algorithm, seq or hash")
    try:
        key = serialization.load_der_public_key(embedded)
    except ValueError:
        raise AnchorError("malformed anchor: public key") from None
    if public_key_pem is not None:
        pinned = serialization.load_pem_public_key(public_key_pem)
        if (
            pinned.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            != embedded
        ):
            raise AnchorError("anchor signed by another key than the audit key given")
    if not isinstance(key, rsa.RSAPublicKey):
        raise AnchorError("anchor key is not RSA")
    try:
        key.verify(
            signature,
            anchor_payload(seq=seq, head_hash=head_hash, signed_at=signed_at),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature:
        raise AnchorError("anchor signature does not verify") from None
    return Anchor(seq, head_hash, signed_at, hashlib.sha256(embedded).hexdigest())
