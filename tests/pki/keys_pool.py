"""RSA keys shared by the PKI tests: generated once per session (RSA generation is slow)."""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives.asymmetric import rsa


@functools.cache
def rsa_key(name: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    """The session's key called ``name`` (same name, same key)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)
