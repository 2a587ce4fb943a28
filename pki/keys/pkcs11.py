"""PKCS#11 key backend (python-pkcs11): keys stay in the token, signing happens there.

A handle is ``label:<key label>`` or ``id:<hex id>``. The user PIN is read from the environment
variable whose *name* is configured.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pkcs11
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo, Prehashed
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import NoSuchKey, PKCS11Error, UserAlreadyLoggedIn

from pki.keys.base import KeyBackend
from pki.keys.errors import KeyBackendError, KeyBackendUnavailable, KeyNotFound

# Where distributions put SoftHSM2, tried in order when no module path is configured.
STANDARD_MODULE_LOCATIONS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)

_PKCS1_MECHANISMS = {
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}
_PSS_MECHANISMS = {
    "sha256": (Mechanism.SHA256_RSA_PKCS_PSS, Mechanism.SHA256, pkcs11.MGF.SHA256),
    "sha384": (Mechanism.SHA384_RSA_PKCS_PSS, Mechanism.SHA384, pkcs11.MGF.SHA384),
    "sha512": (Mechanism.SHA512_RSA_PKCS_PSS, Mechanism.SHA512, pkcs11.MGF.SHA512),
}


def find_module(candidates: tuple[str, ...] = STANDARD_MODULE_LOCATIONS) -> str:
    """The first existing module path among ``candidates``."""
    for candidate in candidates:
        if Path(candidate).exists():
            return candidate
    raise KeyBackendUnavailable("no PKCS#11 module found; set the backend's 'module' option")


class Pkcs11KeyBackend(KeyBackend):
    """Keys in a PKCS#11 token, reached through a small pool of logged-in sessions."""

    def __init__(
        self,
        alias: str,
        *,
        token_label: str,
        pin_env: str,
        module: str | None = None,
        pool_size: int = 2,
    ) -> None:
        super().__init__(alias)
        self.module = module
        self.token_label = token_label
        self.pin_env = pin_env
        self.pool_size = max(1, pool_size)
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
        self._opened = 0
        self._lock = threading.Lock()
        self._token: Any = None
        self._keys: dict[str, Pkcs11RsaPrivateKey] = {}

    # --- sessions ---------------------------------------------------------------------------

    def _pin(self) -> str:
        value = os.environ.get(self.pin_env)
        if not value:
            raise KeyBackendUnavailable(
                f"key backend {self.alias!r}: set the environment variable {self.pin_env} "
                "to the token user PIN"
            )
        return value

    def _get_token(self) -> Any:
        if self._token is None:
            module = self.module or find_module()
            try:
                lib = pkcs11.lib(module)
                self._token = lib.get_token(token_label=self.token_label)
            except (PKCS11Error, RuntimeError, OSError) as exc:
                raise KeyBackendUnavailable(
                    f"key backend {self.alias!r}: token {self.token_label!r} unreachable "
                    f"({type(exc).__name__})"
                ) from None
        return self._token

    def _open(self) -> Any:
        token = self._get_token()
        pin = self._pin()
        try:
            try:
                return token.open(rw=True, user_pin=pin)
            except UserAlreadyLoggedIn:
                # PKCS#11 login state is per application: later sessions inherit it.
                return token.open(rw=True)
        except PKCS11Error as exc:
            self._token = None
            raise KeyBackendUnavailable(
                f"key backend {self.alias!r}: cannot log in to token {self.token_label!r} "
                f"({type(exc).__name__})"
            ) from None

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        """Borrow a logged-in session; a session that failed is dropped, not returned."""
        try:
            sess = self._pool.get_nowait()
        except queue.Empty:
            with self._lock:
                may_open = self._opened < self.pool_size
                if may_open:
                    self._opened += 1
            if may_open:
                opened = False
                try:
                    sess = self._open()
                    opened = True
                finally:
                    if not opened:  # the slot reserved above is given back
                        with self._lock:
                            self._opened -= 1
            else:
                try:
                    sess = self._pool.get(timeout=30)
                except queue.Empty:
                    raise KeyBackendUnavailable(
                        f"key backend {self.alias!r}: no free session"
                    ) from None
        healthy = True
        try:
            yield sess
        except PKCS11Error:
            healthy = False
            raise
        finally:
            if healthy:
                self._pool.put(sess)
            else:
                with self._lock:
                    self._opened -= 1
                with contextlib.suppress(PKCS11Error):
                    sess.close()

    def close(self) -> None:
        while True:
            try:
                sess = self._pool.get_nowait()
            except queue.Empty:
                break
            with contextlib.suppress(PKCS11Error):
                sess.close()
            with self._lock:
                self._opened -= 1
        self._token = None
        self._keys.clear()

    def check(self) -> None:
        with self.session():
            pass

    # --- keys -------------------------------------------------------------------------------

    @staticmethod
    def _selector(handle: str) -> dict[str, Any]:
        kind, _, value = handle.partition(":")
        if kind == "label" and value:
            return {"label": value}
        if kind == "id" and value:
            try:
                return {"id": bytes.fromhex(value)}
            except ValueError:
                pass
        raise KeyBackendError(f"invalid PKCS#11 key handle {handle!r} (label:<x> or id:<hex>)")

    def _find(self, sess: Any, handle: str, object_class: ObjectClass) -> Any:
        try:
            return sess.get_key(
                object_class=object_class, key_type=KeyType.RSA, **self._selector(handle)
            )
        except NoSuchKey:
            raise KeyNotFound(f"no key {handle!r} in token {self.token_label!r}") from None

    def has_key(self, handle: str) -> bool:
        try:
            with self.session() as sess:
                self._find(sess, handle, ObjectClass.PRIVATE_KEY)
        except KeyNotFound:
            return False
        except PKCS11Error as exc:
            raise KeyBackendUnavailable(
                f"key backend {self.alias!r}: {type(exc).__name__}"
            ) from None
        return True

    def handle_for(self, label: str) -> str:
        return f"label:{label}"

    def generate_rsa(self, *, label: str, key_size: int) -> str:
        handle = self.handle_for(label)
        if self.has_key(handle):
            raise KeyBackendError(f"a key {label!r} already exists in token {self.token_label!r}")
        try:
            with self.session() as sess:
                sess.generate_keypair(
                    KeyType.RSA,
                    key_size,
                    label=label,
                    id=label.encode("utf-8"),
                    store=True,
                    public_template={Attribute.PUBLIC_EXPONENT: b"\x01\x00\x01"},
                    private_template={
                        Attribute.SENSITIVE: True,
                        Attribute.EXTRACTABLE: False,
                        Attribute.SIGN: True,
                        Attribute.DECRYPT: False,
                        Attribute.UNWRAP: False,
                    },
                )
        except PKCS11Error as exc:
            raise KeyBackendUnavailable(
                f"key backend {self.alias!r}: key generation failed ({type(exc).__name__})"
            ) from None
        return handle

    def private_key(self, handle: str) -> rsa.RSAPrivateKey:
        # The key object only names the token object: keep it instead of searching the token
        # for it on every signature (issuance and OCSP pre-signing ask for it each time).
        cached = self._keys.get(handle)
        if cached is not None:
            return cached
        try:
            with self.session() as sess:
                self._find(sess, handle, ObjectClass.PRIVATE_KEY)
                pub = self._find(sess, handle, ObjectClass.PUBLIC_KEY)
                n = int.from_bytes(pub[Attribute.MODULUS], "big")
                e = int.from_bytes(pub[Attribute.PUBLIC_EXPONENT], "big")
        except PKCS11Error as exc:
            raise KeyBackendUnavailable(
                f"key backend {self.alias!r}: {type(exc).__name__}"
            ) from None
        key = Pkcs11RsaPrivateKey(self, handle, rsa.RSAPublicNumbers(e, n).public_key())
        self._keys[handle] = key
        return key

    def sign(
        self, handle: str, data: bytes, pad: padding.AsymmetricPadding, algorithm: str
    ) -> bytes:
        """Sign ``data`` (hashing done in the token) with the key ``handle``."""
        params: dict[str, Any] = {}
        if isinstance(pad, padding.PKCS1v15):
            mechanism = _PKCS1_MECHANISMS.get(algorithm)
        elif isinstance(pad, padding.PSS):
            entry = _PSS_MECHANISMS.get(algorithm)
            mechanism = entry[0] if entry else None
            if entry is not None:
                digest_len = {"sha256": 32, "sha384": 48, "sha512": 64}[algorithm]
                salt = pad._salt_length
                if not isinstance(salt, int):
                    salt = digest_len
                params["mechanism_param"] = (entry[1], entry[2], salt)
        else:
            mechanism = None
        if mechanism is None:
            raise KeyBackendError(f"unsupported signature scheme {type(pad).__name__}/{algorithm}")
        try:
            with self.session() as sess:
                key = self._find(sess, handle, ObjectClass.PRIVATE_KEY)
                return bytes(key.sign(data, mechanism=mechanism, **params))
        except PKCS11Error as exc:
            raise KeyBackendUnavailable(
                f"key backend {self.alias!r}: signing failed ({type(exc).__name__})"
            ) from None


class Pkcs11RsaPrivateKey(rsa.RSAPrivateKey):
    """An RSA key in a token, shaped like a cryptography key so the X.509 builders sign with it."""

    def __init__(self, backend: Pkcs11KeyBackend, handle: str, public: rsa.RSAPublicKey) -> None:
        self._backend = backend
        self._handle = handle
        self._public = public

    def __repr__(self) -> str:
        return f"<Pkcs11RsaPrivateKey {self._backend.alias}:{self._handle} {self.key_size} bits>"

    def sign(
        self,
        data: bytes,
        padding: padding.AsymmetricPadding,
        algorithm: hashes.HashAlgorithm | Prehashed | NoDigestInfo,
    ) -> bytes:
        if isinstance(algorithm, Prehashed | NoDigestInfo):
            raise KeyBackendError("prehashed signing is not offered by the PKCS#11 backend")
        return self._backend.sign(self._handle, data, padding, algorithm.name)

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        raise KeyBackendError("CA keys do not decrypt")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        raise KeyBackendError("the private key cannot leave the token")

    def private_bytes(
        self,
        encoding: Any,
        format: Any,
        encryption_algorithm: Any,
    ) -> bytes:
        raise KeyBackendError("the private key cannot leave the token")

    def __copy__(self) -> Pkcs11RsaPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Pkcs11RsaPrivateKey:
        return self
