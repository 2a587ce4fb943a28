"""RSA private-key operations of the chip (padding is the card's job, the key never leaves)."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

DIGEST_INFO_PREFIX = {
    20: bytes.fromhex("3021300906052b0e03021a05000414"),
    32: bytes.fromhex("3031300d060960864801650304020105000420"),
    48: bytes.fromhex("3041300d060960864801650304020205000430"),
    64: bytes.fromhex("3051300d060960864801650304020305000440"),
}
_PSS_HASH: dict[int, hashes.HashAlgorithm] = {
    20: hashes.SHA1(),  # noqa: S303 - CPS cards still sign SHA-1 for legacy middleware
    32: hashes.SHA256(),
    48: hashes.SHA384(),
    64: hashes.SHA512(),
}


class RsaInputError(ValueError):
    """The data given to a private-key operation does not fit the key or the padding."""


def load(der: bytes) -> rsa.RSAPrivateKey:
    """Private key from PKCS#8 DER."""
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("not an RSA key")
    return key


def dump(key: rsa.RSAPrivateKey) -> bytes:
    """PKCS#8 DER of a private key."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def modulus_bytes(key: rsa.RSAPrivateKey) -> int:
    """Size of the modulus in bytes."""
    return (key.key_size + 7) // 8


def raw_private(key: rsa.RSAPrivateKey, block: bytes) -> bytes:
    """m^d mod n with the CRT, for a block exactly as long as the modulus."""
    k = modulus_bytes(key)
    priv = key.private_numbers()
    n = priv.public_numbers.n
    value = int.from_bytes(block, "big")
    if len(block) != k or value >= n:
        raise RsaInputError("block does not fit the modulus")
    m1 = pow(value, priv.dmp1, priv.p)
    m2 = pow(value, priv.dmq1, priv.q)
    h = (priv.iqmp * (m1 - m2)) % priv.p
    return (m2 + h * priv.q).to_bytes(k, "big")


def sign_pkcs1(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """EMSA-PKCS1-v1_5 signature of a DigestInfo (a bare SHA-1/SHA-2 hash is wrapped first)."""
    if len(data) in DIGEST_INFO_PREFIX:
        data = DIGEST_INFO_PREFIX[len(data)] + data
    k = modulus_bytes(key)
    if len(data) > k - 11:
        raise RsaInputError("DigestInfo too long for the key")
    block = b"\x00\x01" + b"\xff" * (k - 3 - len(data)) + b"\x00" + data
    return raw_private(key, block)


def sign_pss(key: rsa.RSAPrivateKey, digest: bytes) -> bytes:
    """RSASSA-PSS of a hash (MGF1 with the same hash, salt as long as the hash)."""
    algorithm = _PSS_HASH.get(len(digest))
    if algorithm is None:
        raise RsaInputError("PSS needs a SHA-1 or SHA-2 hash")
    return key.sign(
        digest,
        padding.PSS(mgf=padding.MGF1(algorithm), salt_length=len(digest)),
        utils.Prehashed(algorithm),
    )


def decipher(key: rsa.RSAPrivateKey, cryptogram: bytes, *, unpad: bool) -> bytes:
    """Raw RSA decryption, with the PKCS#1 v1.5 type 2 padding removed when ``unpad``."""
    block = raw_private(key, cryptogram)
    if not unpad:
        return block
    if block[:2] != b"\x00\x02":
        raise RsaInputError("bad padding")
    sep = block.find(b"\x00", 2)
    if sep < 10:
        raise RsaInputError("bad padding")
    return block[sep + 1 :]


def public_key_template(key: rsa.RSAPrivateKey) -> bytes:
    """``7F49 {81 n, 82 e}`` as GENERATE ASYMMETRIC KEY PAIR returns it."""
    from cardsim import tlv

    numbers = key.public_key().public_numbers()
    n = numbers.n.to_bytes(modulus_bytes(key), "big")
    e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    return tlv.encode(0x7F49, tlv.encode(0x81, n) + tlv.encode(0x82, e))
