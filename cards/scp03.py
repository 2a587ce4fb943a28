"""GlobalPlatform SCP03, host side, sans I/O (GP Card Specification v2.3 Amendment D).

Usage: build ``initialize_update()``, feed the card's answer to ``process_initialize_update()``
(which checks the card cryptogram), send ``external_authenticate(level)``, check its answer with
``process_external_authenticate()``, then ``wrap()`` commands and ``unwrap()`` their responses.
Wrapping needs no response, so a whole batch can be wrapped ahead and unwrapped in order: each
``WrappedCommand`` carries the C-MAC and counter its response is checked against. Commands may
be wrapped as soon as EXTERNAL AUTHENTICATE is built (they travel in the same batch, after it);
their responses are only trusted once ``process_external_authenticate`` has accepted the card's.

Conventions fixed here (the card side follows them):
- C-MAC input is the wrapped APDU up to the end of its data field without the MAC and without Le:
  ``CLA' INS P1 P2 Lc' [C-ENC data]``, Lc' already counting the 8 MAC bytes (short or extended).
- The encryption counter starts at 1 with the first command after EXTERNAL AUTHENTICATE and
  increments with every wrapped command, with or without data; R-ENC uses the command's counter.
- Le is passed through unchanged; it states the *plaintext* length wanted.
- R-MAC is present on responses with SW ``9000``, ``62xx`` or ``63xx``; other status words carry
  neither data nor R-MAC. An SM error (``6987``/``6988``) or a MAC failure closes the session.
- Responses longer than 256 bytes come as ``61 xx`` + unwrapped GET RESPONSE; the transport layer
  concatenates them before ``unwrap``.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntFlag
from typing import NamedTuple

from cards import crypto
from cards.apdu import (
    MAX_EXTENDED,
    MAX_SHORT_DATA,
    MAX_SHORT_LE,
    CommandApdu,
    ResponseApdu,
    lc_field,
    make_cla,
    with_secure_messaging,
)
from cards.errors import (
    AuthenticationError,
    CryptoError,
    MacError,
    MalformedResponse,
    ProtocolError,
    StatusWordError,
)

__all__ = [
    "VALID_LEVELS",
    "InitializeUpdateResponse",
    "Scp03Host",
    "Scp03StaticKeys",
    "SecurityLevel",
    "WrappedCommand",
]


class SecurityLevel(IntFlag):
    """SCP03 security level bits (P1 of EXTERNAL AUTHENTICATE)."""

    C_MAC = 0x01
    C_DECRYPTION = 0x02
    R_MAC = 0x10
    R_ENCRYPTION = 0x20


VALID_LEVELS = frozenset({0x01, 0x03, 0x11, 0x13, 0x33})
"""The levels GP defines: C-MAC; + C-DEC; C-MAC + R-MAC; + C-DEC; + R-ENC."""

# The level bits as plain ints: IntFlag operators cost a Python call each, on every command.
_C_DECRYPTION = int(SecurityLevel.C_DECRYPTION)
_R_MAC = int(SecurityLevel.R_MAC)
_R_ENCRYPTION = int(SecurityLevel.R_ENCRYPTION)


@functools.cache
def _sm_cla(channel: int, proprietary: bool) -> int:
    """The CLA of a wrapped command (SM indication set) on ``channel``, before the chaining bit."""
    return with_secure_messaging(make_cla(channel, proprietary=proprietary))


@dataclass(frozen=True, slots=True)
class Scp03StaticKeys:
    """A card's static SCP03 key set (Key-ENC, Key-MAC, DEK) and its key version number."""

    enc: bytes = field(repr=False)
    mac: bytes = field(repr=False)
    dek: bytes = field(repr=False)
    kvn: int = 0x30

    def __post_init__(self) -> None:
        lengths = {len(self.enc), len(self.mac), len(self.dek)}
        if len(lengths) != 1 or lengths.pop() not in (16, 24, 32):
            raise ValueError("SCP03 keys must be AES keys of one length")
        if not 0x01 <= self.kvn <= 0x7F:
            raise ValueError(f"KVN {self.kvn:02X} outside 01..7F")

    @classmethod
    def diversify(cls, master: bytes, kdd: bytes, kvn: int, length: int = 16) -> Scp03StaticKeys:
        """Per-card keys from one issuer master key and the card's KDD (scp03_diversify_key)."""
        return cls(
            enc=crypto.scp03_diversify_key(master, kdd, crypto.SCP03_DIVERSIFY_ENC, length),
            mac=crypto.scp03_diversify_key(master, kdd, crypto.SCP03_DIVERSIFY_MAC, length),
            dek=crypto.scp03_diversify_key(master, kdd, crypto.SCP03_DIVERSIFY_DEK, length),
            kvn=kvn,
        )


@dataclass(frozen=True, slots=True)
class InitializeUpdateResponse:
    """The parsed answer to INITIALIZE UPDATE."""

    kdd: bytes
    kvn: int
    scp: int
    i: int
    card_challenge: bytes
    card_cryptogram: bytes
    sequence_counter: bytes | None

    @classmethod
    def parse(cls, data: bytes) -> InitializeUpdateResponse:
        """Split the 29- or 32-byte response; MalformedResponse otherwise."""
        if len(data) not in (29, 32):
            raise MalformedResponse("INITIALIZE UPDATE", f"{len(data)} bytes instead of 29 or 32")
        return cls(
            kdd=data[0:10],
            kvn=data[10],
            scp=data[11],
            i=data[12],
            card_challenge=data[13:21],
            card_cryptogram=data[21:29],
            sequence_counter=data[29:32] if len(data) == 32 else None,
        )


@dataclass(frozen=True, slots=True)
class WrappedCommand:
    """A command as wrapped for the card, and the state needed to check its response."""

    apdu: CommandApdu
    c_mac: bytes = field(repr=False)
    counter: int
    level: int

    def encode(self) -> bytes:
        """The wrapped APDU bytes."""
        return self.apdu.encode()


_RMAC_STATUS = (0x90, 0x62, 0x63)


class _PreparedKeys(NamedTuple):
    """The session keys, each prepared once for the session's many operations."""

    s_enc: crypto.AesKey
    s_mac: crypto.AesKey
    s_rmac: crypto.AesKey


class Scp03Host:
    """Host side of one SCP03 session on one logical channel."""

    def __init__(
        self,
        keys: Scp03StaticKeys,
        *,
        channel: int = 0,
        rng: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self._keys = keys
        self.channel = channel
        self._rng = rng
        self._host_challenge = b""
        self._session: crypto.Scp03SessionKeys | None = None
        # The session keys prepared once for the session's MACs and ciphers (crypto.AesKey).
        self._prepared: _PreparedKeys | None = None
        self._card: InitializeUpdateResponse | None = None
        self._chain = bytes(16)
        self._counter = 1
        self.level = 0
        self.authenticated = False
        self.closed = False

    def __repr__(self) -> str:
        return (
            f"Scp03Host(kvn={self._keys.kvn:#04x}, channel={self.channel}, level={self.level:#04x})"
        )

    # --- opening ---------------------------------------------------------------------------

    def initialize_update(self) -> CommandApdu:
        """INITIALIZE UPDATE ``80 50 KVN 00 08 host_challenge 00`` with a fresh host challenge."""
        self._host_challenge = self._rng(8)
        if len(self._host_challenge) != 8:
            raise ProtocolError("INITIALIZE UPDATE", "the RNG must return 8 bytes")
        cla = make_cla(self.channel, proprietary=True)
        return CommandApdu(cla, 0x50, self._keys.kvn, 0x00, self._host_challenge, MAX_SHORT_LE)

    def process_initialize_update(self, response: ResponseApdu) -> InitializeUpdateResponse:
        """Check the answer and card cryptogram, derive the session keys."""
        if not self._host_challenge:
            raise ProtocolError("INITIALIZE UPDATE", "no INITIALIZE UPDATE was built")
        if response.sw != 0x9000:
            raise StatusWordError("INITIALIZE UPDATE", response.sw)
        info = InitializeUpdateResponse.parse(response.data)
        if info.scp != 0x03:
            raise MalformedResponse(
                "INITIALIZE UPDATE", f"card speaks SCP{info.scp:02X}, not SCP03"
            )
        if info.kvn != self._keys.kvn:
            raise AuthenticationError(
                "INITIALIZE UPDATE",
                f"card answered KVN {info.kvn:02X}, expected {self._keys.kvn:02X}",
            )
        session = crypto.scp03_session_keys(
            self._keys.enc, self._keys.mac, self._host_challenge, info.card_challenge
        )
        expected = crypto.scp03_card_cryptogram(
            session.s_mac, self._host_challenge, info.card_challenge
        )
        if not crypto.constant_time_equal(expected, info.card_cryptogram):
            raise AuthenticationError(
                "INITIALIZE UPDATE", "card cryptogram does not verify (wrong keys?)"
            )
        self._session = session
        self._prepared = _PreparedKeys(
            crypto.AesKey(session.s_enc),
            crypto.AesKey(session.s_mac),
            crypto.AesKey(session.s_rmac),
        )
        self._card = info
        return info

    def external_authenticate(self, level: int) -> CommandApdu:
        """EXTERNAL AUTHENTICATE ``84 82 SL 00 10 host_cryptogram C-MAC``."""
        if self._session is None:
            raise ProtocolError("EXTERNAL AUTHENTICATE", "INITIALIZE UPDATE has not succeeded")
        if level not in VALID_LEVELS:
            raise ValueError(f"security level {level:02X} is not one of 01, 03, 11, 13, 33")
        assert self._card is not None
        host_cryptogram = crypto.scp03_host_cryptogram(
            self._session.s_mac, self._host_challenge, self._card.card_challenge
        )
        cla = with_secure_messaging(make_cla(self.channel, proprietary=True))
        mac_input = CommandApdu(cla, 0x82, level, 0x00, host_cryptogram + bytes(8)).encode()[:-8]
        assert self._prepared is not None
        full = crypto.scp03_c_mac(self._prepared.s_mac, bytes(16), mac_input)
        self._chain = full
        self.level = int(level)
        self._counter = 1
        self.closed = False
        return CommandApdu(cla, 0x82, level, 0x00, host_cryptogram + full[:8])

    def process_external_authenticate(self, response: ResponseApdu) -> None:
        """Open the session if the card accepted the host cryptogram."""
        if response.sw != 0x9000:
            self.closed = True
            raise AuthenticationError(
                "EXTERNAL AUTHENTICATE", f"card refused the host cryptogram (SW {response.sw:04X})"
            )
        if response.data:
            self.closed = True
            raise MalformedResponse("EXTERNAL AUTHENTICATE", "unexpected response data")
        self.authenticated = True

    # --- secure messaging ------------------------------------------------------------------

    def _require_open(self, command: str) -> _PreparedKeys:
        if self.closed:
            raise ProtocolError(command, "the SCP03 session was closed after an error")
        if not self.level or self._prepared is None:
            raise ProtocolError(command, "no SCP03 session is open")
        return self._prepared

    def wrap(self, apdu: CommandApdu, command: str = "command") -> WrappedCommand:
        """Apply C-MAC (and C-ENC) to a plain command on this session's channel."""
        session = self._require_open(command)
        counter = self._counter
        self._counter += 1
        cla = _sm_cla(self.channel, bool(apdu.cla & 0x80))
        cla |= apdu.cla & 0x10  # keep the chaining bit
        data = apdu.data
        if self.level & _C_DECRYPTION and data:
            data = crypto.scp03_encrypt_command_data(session.s_enc, counter, data)
        # The MAC input: the wrapped APDU without its MAC and Le, Lc' counting the MAC (its
        # length form chosen as for that APDU without Le).
        lc = len(data) + 8
        if lc > MAX_EXTENDED:
            raise ValueError(f"command data of {lc} bytes exceeds 65535")
        mac_input = (
            bytes((cla, apdu.ins, apdu.p1, apdu.p2))
            + lc_field(lc, extended=apdu.extended or lc > MAX_SHORT_DATA)
            + data
        )
        full = crypto.scp03_c_mac(session.s_mac, self._chain, mac_input)
        self._chain = full
        wrapped = CommandApdu(
            cla, apdu.ins, apdu.p1, apdu.p2, data + full[:8], apdu.le, extended=apdu.extended
        )
        return WrappedCommand(wrapped, full, counter, self.level)

    def unwrap(
        self, wrapped: WrappedCommand, response: ResponseApdu, command: str = "command"
    ) -> ResponseApdu:
        """Check R-MAC and remove R-ENC; raises before releasing any data that fails to verify."""
        session = self._require_open(command)
        if not self.authenticated:
            raise ProtocolError(command, "EXTERNAL AUTHENTICATE was not accepted")
        if not wrapped.level & _R_MAC:
            return response
        if response.sw in (0x6987, 0x6988):
            self.closed = True
            raise StatusWordError(command, response.sw)
        if response.sw1 not in _RMAC_STATUS:
            if response.data:
                self.closed = True
                raise MalformedResponse(command, f"data with error status {response.sw:04X}")
            return response
        if len(response.data) < 8:
            self.closed = True
            raise MacError(command, "response too short to carry an R-MAC")
        body, mac = response.data[:-8], response.data[-8:]
        expected = crypto.scp03_r_mac(session.s_rmac, wrapped.c_mac, body, response.sw_bytes)
        if not crypto.constant_time_equal(expected, mac):
            self.closed = True
            raise MacError(command, "R-MAC does not verify")
        if wrapped.level & _R_ENCRYPTION and body:
            try:
                body = crypto.scp03_decrypt_response_data(session.s_enc, wrapped.counter, body)
            except CryptoError as exc:
                self.closed = True
                raise MalformedResponse(command, f"R-ENC data does not decrypt: {exc}") from exc
        return ResponseApdu(body, response.sw)
