"""The contact chip: CPS4 (ChipDoc-like applet + GP card manager) and CPS3 (IAS-ECC-like).

One engine serves both products; a ``ContactProfile`` says what each chip has. The persistent part
lives in ``ContactState`` (saved by the caller when ``dirty`` is set); sessions, verified PINs and
selections are runtime state, lost at power-off like on a real chip.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa as rsa_types

from cards import crypto
from cards.products import PinPolicy
from cardsim import apdu, facts, tlv
from cardsim import rsa as rsa_ops
from cardsim.apdu import CardError, Command
from cardsim.fs import (
    AM_DELETE,
    AM_READ,
    AM_UPDATE,
    MF_FID,
    Node,
    ac_satisfied,
    node_from_fcp,
)

# GlobalPlatform card lifecycle of the issuer security domain.
LC_OP_READY = 0x01
LC_INITIALIZED = 0x07
LC_SECURED = 0x0F
LC_LOCKED = 0x7F
_LC_ORDER = (LC_OP_READY, LC_INITIALIZED, LC_SECURED, LC_LOCKED)

ISD_AID = facts.CARD_MANAGER_AID
# The legacy applets answer SELECT only; the product definitions do not describe them.
CPS2TER_AID = bytes.fromhex("8025000001FF0002")
IAS_ECC_AID = bytes.fromhex("E828BD080FA000000167455349474E")

SCP03_I_PARAMETER = 0x70  # pseudo-random challenge flag, R-MAC and R-ENC supported

# Card-side constants of the non-standard personalization APDUs (docs/cardsim.md).
ADMIN_KEY_P1P2 = 0x009B  # PUT DATA 00 DA 00 9B: KV || AES-128 admin key; GET DATA: KV || tries
ADMIN_KEY_TRIES = facts.ADMIN_KEY_TRIES
ADMIN_KEY_REF = facts.ADMIN_KEY_REF  # CHANGE REFERENCE DATA P1 01 / EXTERNAL AUTHENTICATE key ref
CPLC_TAG = 0x9F7F

ALG_RSA_PKCS1 = 0x02  # PKCS#1 v1.5 signature of a DigestInfo (or a bare hash)
ALG_RSA_PSS = 0x05  # RSASSA-PSS of a hash
ALG_RSA_PKCS1_DECIPHER = 0x1A  # RSAES-PKCS1-v1_5 decipher (padding removed)
ALG_RSA_RAW = 0x00  # raw RSA private operation (decipher only)

_CHAINABLE = {0x2A, 0xD6, 0xDA, 0xDB, 0xE0}
_SECURE_LEVELS = {0x01, 0x03, 0x11, 0x13, 0x31, 0x33}
_RMAC_SW1 = (0x62, 0x63)  # warnings: protected like 9000; every other SW1 is an error


@dataclass
class PinObject:
    """A PIN or PUK: format, retry counter, and a salted digest of the value (empty: not set)."""

    ref: int
    min_len: int
    max_len: int
    tries_max: int
    tries_left: int
    puk_ref: int = 0
    digest: str = field(default="", repr=False)

    @classmethod
    def unset(cls, policy: PinPolicy, *, puk_ref: int = 0) -> PinObject:
        """A PIN or PUK with the format and tries of a product's policy, its value not set yet."""
        return cls(
            policy.reference,
            policy.min_length,
            policy.max_length,
            policy.tries,
            policy.tries,
            puk_ref=puk_ref,
        )

    def to_json(self) -> dict[str, Any]:
        """Plain data for the state file."""
        return dict(self.__dict__)


@dataclass
class KeySlot:
    """An on-chip RSA private key and the PIN that guards it."""

    ref: int
    der: bytes = field(repr=False)
    pin_ref: int = 1


@dataclass
class AdminKey:
    """The per-card offline-unblock key."""

    version: int
    key: bytes = field(repr=False)
    tries_left: int = ADMIN_KEY_TRIES


@dataclass
class ContactState:
    """What the contact chip keeps in EEPROM."""

    serial: bytes
    lifecycle: int
    kvn: int
    key_enc: bytes = field(repr=False)
    key_mac: bytes = field(repr=False)
    key_dek: bytes = field(repr=False)
    seq_counter: int
    mf: Node
    pins: dict[int, PinObject]
    keys: dict[int, KeySlot] = field(default_factory=dict)
    admin: AdminKey | None = None
    capacity: int = 80_000

    def to_json(self) -> dict[str, Any]:
        """Plain data for the state file."""
        return {
            "serial": self.serial.hex(),
            "lifecycle": self.lifecycle,
            "kvn": self.kvn,
            "key_enc": self.key_enc.hex(),
            "key_mac": self.key_mac.hex(),
            "key_dek": self.key_dek.hex(),
            "seq_counter": self.seq_counter,
            "mf": self.mf.to_json(),
            "pins": [p.to_json() for p in self.pins.values()],
            "keys": [
                {"ref": k.ref, "der": k.der.hex(), "pin_ref": k.pin_ref} for k in self.keys.values()
            ],
            "admin": None
            if self.admin is None
            else {
                "version": self.admin.version,
                "key": self.admin.key.hex(),
                "tries_left": self.admin.tries_left,
            },
            "capacity": self.capacity,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ContactState:
        """Inverse of ``to_json``."""
        admin = raw.get("admin")
        return cls(
            serial=bytes.fromhex(raw["serial"]),
            lifecycle=int(raw["lifecycle"]),
            kvn=int(raw["kvn"]),
            key_enc=bytes.fromhex(raw["key_enc"]),
            key_mac=bytes.fromhex(raw["key_mac"]),
            key_dek=bytes.fromhex(raw["key_dek"]),
            seq_counter=int(raw["seq_counter"]),
            mf=Node.from_json(raw["mf"]),
            pins={int(p["ref"]): PinObject(**p) for p in raw["pins"]},
            keys={
                int(k["ref"]): KeySlot(int(k["ref"]), bytes.fromhex(k["der"]), int(k["pin_ref"]))
                for k in raw.get("keys", [])
            },
            admin=None
            if admin is None
            else AdminKey(
                int(admin["version"]), bytes.fromhex(admin["key"]), int(admin["tries_left"])
            ),
            capacity=int(raw.get("capacity", 80_000)),
        )


@dataclass(frozen=True)
class ContactProfile:
    """What a contact chip product has."""

    name: str
    atr: bytes
    card_manager: bool
    applets: tuple[bytes, ...]
    internal_authenticate: bool
    user_pin_ref: int
    challenge_lengths: frozenset[int] = frozenset(range(1, 257))
    """GET CHALLENGE lengths (Le) the chip answers; others get 6700."""
    key_operations: tuple[tuple[int, int], ...] = ()
    """IAS-ECC: per key reference, the operations its SDO allows (ACL bits: 40 PSO CDS,
    20 INTERNAL AUTHENTICATE, 10 PSO DECIPHER). Empty: any key does any operation, and no SDO
    answers GET DATA."""


CPS4_PROFILE = ContactProfile(
    name="cps4",
    atr=facts.CPS4.contact.atr,
    card_manager=True,
    applets=(facts.CHIPDOC_AID, CPS2TER_AID),
    internal_authenticate=False,
    user_pin_ref=facts.CPS4.pin.reference,
)
CPS3_PROFILE = ContactProfile(
    name="cps3",
    atr=facts.CPS3.contact.atr,
    card_manager=False,
    applets=(IAS_ECC_AID, CPS2TER_AID),
    internal_authenticate=True,
    user_pin_ref=facts.CPS3.pin.reference,
    challenge_lengths=frozenset({8}),  # IAS-ECC answers 8 bytes only (OpenSC card-iasecc.c)
    key_operations=(
        (facts.CPS3.key_slot("sign").key_reference, 0x40),
        (facts.CPS3.key_slot("auth").key_reference, 0x30),
    ),
)
_CRT_OPERATION = {0xB6: 0x40, 0xA4: 0x20, 0xB8: 0x10}  # MSE template -> SDO ACL bit
SDO_CLASS_CHV, SDO_CLASS_RSA_PRIVATE = 0x01, 0x10


def pin_digest(serial: bytes, ref: int, value: bytes) -> str:
    """Salted digest under which a PIN value is kept (the chip never stores it in clear)."""
    return hashlib.sha256(b"cardsim-pin" + serial + bytes([ref]) + value).hexdigest()


@dataclass
class Scp03Session:
    """Card side of one SCP03 session on a logical channel."""

    keys: crypto.Scp03SessionKeys = field(repr=False)
    host_challenge: bytes
    card_challenge: bytes
    level: int = 0
    authenticated: bool = False
    chaining: bytes = field(default=bytes(16), repr=False)
    counter: int = 0


@dataclass
class Channel:
    """Runtime state of a logical channel."""

    df: Node
    ef: Node | None = None
    isd: bool = False
    scp: Scp03Session | None = None
    se: dict[int, tuple[int, int]] = field(default_factory=dict)  # CRT tag -> (key ref, alg)
    chain: tuple[int, int, int, bytes] | None = None
    pending: bytes = b""


class ContactChip:
    """An ISO 7816 contact chip answering command APDUs."""

    def __init__(
        self,
        state: ContactState,
        profile: ContactProfile,
        *,
        rng: Callable[[int], bytes],
        keygen: Callable[[], rsa_types.RSAPrivateKey],
    ) -> None:
        self.state = state
        self.profile = profile
        self.rng = rng
        self.keygen = keygen
        self.dirty = False
        self._keys: dict[int, rsa_types.RSAPrivateKey] = {}
        self.power_on()

    @property
    def atr(self) -> bytes:
        """Answer to reset."""
        return self.profile.atr

    def power_on(self) -> None:
        """Reset the runtime state (selections, sessions, verified PINs, challenge)."""
        self.channels: dict[int, Channel] = {0: Channel(df=self.state.mf)}
        self.verified: set[int] = set()
        self.challenge: bytes = b""
        self.admin_authenticated = False

    # -- entry point ---------------------------------------------------------------------------

    def transmit(self, raw: bytes) -> bytes:
        """Process one command APDU and return the response APDU."""
        try:
            cmd = apdu.parse(raw)
            return self._transmit(cmd)
        except CardError as err:
            return apdu.sw_bytes(err.sw)

    def _transmit(self, cmd: Command) -> bytes:
        cla = cmd.cla
        if cla == 0xFF or 0x20 <= cla < 0x40 or (cla & 0x80 and cla & 0x60):
            raise CardError(apdu.SW_CLA_NOT_SUPPORTED)
        if 0x40 <= cla < 0x80:
            raise CardError(apdu.SW_CHANNEL_NOT_SUPPORTED)
        proprietary = bool(cla & 0x80)
        chan = self._channel(cmd.channel)
        if cmd.ins == 0xC0 and not cmd.secure:
            return self._get_response(chan, cmd)
        chan.pending = b""
        secure = False
        inner = cmd
        if cmd.secure:
            inner = self._unwrap(chan, cmd, proprietary)
            secure = True
        elif chan.scp is not None:
            chan.scp = None  # a plain command ends the session; only SELECT goes on
            if cmd.ins != 0xA4:
                raise CardError(apdu.SW_SECURITY_STATUS)
        if inner.chained:
            if inner.ins not in _CHAINABLE:
                raise CardError(apdu.SW_CHAINING_NOT_SUPPORTED)
            prev = chan.chain
            buffered = prev[3] if prev and prev[:3] == (inner.ins, inner.p1, inner.p2) else b""
            chan.chain = (inner.ins, inner.p1, inner.p2, buffered + inner.data)
            return self._finish(chan, cmd, b"", apdu.SW_OK, secure)
        if chan.chain is not None:
            if chan.chain[:3] == (inner.ins, inner.p1, inner.p2):
                inner = Command(
                    inner.cla, inner.ins, inner.p1, inner.p2, chan.chain[3] + inner.data, inner.le
                )
            chan.chain = None
        try:
            data = self._execute(chan, inner, secure, proprietary)
            sw = apdu.SW_OK
        except CardError as err:
            data, sw = (err.data if isinstance(err, _Done) else b""), err.sw
        return self._finish(chan, cmd, data, sw, secure)

    def _finish(self, chan: Channel, cmd: Command, data: bytes, sw: int, secure: bool) -> bytes:
        if secure and chan.scp is not None and chan.scp.authenticated:
            if sw != apdu.SW_OK and sw >> 8 not in _RMAC_SW1:
                # GP Amendment D §6.2.5: an error status word travels alone, without data,
                # R-ENC or R-MAC (only 9000 and the warnings 62xx/63xx are protected).
                return apdu.sw_bytes(sw)
            data = self._wrap_response(chan.scp, data, sw)
        if sw != apdu.SW_OK:
            return data + apdu.sw_bytes(sw)
        le = cmd.le if cmd.le is not None else 256
        if len(data) > le:
            chan.pending = data[le:]
            return data[:le] + bytes([0x61, min(len(chan.pending), 256) & 0xFF])
        return data + apdu.sw_bytes(sw)

    def _get_response(self, chan: Channel, cmd: Command) -> bytes:
        if cmd.p1 or cmd.p2:
            raise CardError(apdu.SW_WRONG_P1P2)
        if not chan.pending:
            raise CardError(apdu.SW_CONDITIONS)
        le = cmd.le if cmd.le is not None else 256
        out, chan.pending = chan.pending[:le], chan.pending[le:]
        if chan.pending:
            return out + bytes([0x61, min(len(chan.pending), 256) & 0xFF])
        return out + apdu.sw_bytes(apdu.SW_OK)

    def _channel(self, number: int) -> Channel:
        chan = self.channels.get(number)
        if chan is None:
            # Channels 1-3 open on first use, with the MF selected (as the CPS middleware expects).
            chan = self.channels[number] = Channel(df=self.state.mf)
        return chan

    # -- SCP03 ---------------------------------------------------------------------------------

    def _unwrap(self, chan: Channel, cmd: Command, proprietary: bool) -> Command:
        scp = chan.scp
        if cmd.cla & 0x0C != 0x04 or scp is None:
            raise CardError(apdu.SW_SM_NOT_SUPPORTED if cmd.cla & 0x08 else apdu.SW_SECURITY_STATUS)
        if len(cmd.data) < 8:
            chan.scp = None
            raise CardError(apdu.SW_SM_MISSING)
        body, mac = cmd.data[:-8], cmd.data[-8:]
        header = bytes([cmd.cla, cmd.ins, cmd.p1, cmd.p2, len(cmd.data)])
        full = crypto.aes_cmac(scp.keys.s_mac, scp.chaining + header + body)
        if not hmac.compare_digest(full[:8], mac):
            chan.scp = None
            raise CardError(apdu.SW_SM_INCORRECT)
        if not scp.authenticated:
            if not (proprietary and cmd.ins == 0x82):
                chan.scp = None
                raise CardError(apdu.SW_SECURITY_STATUS)
            self._external_authenticate(chan, scp, cmd, body)
            scp.chaining = full
            raise _Done(b"")
        scp.chaining = full
        scp.counter += 1
        data = body
        if scp.level & 0x02 and body:
            try:
                data = crypto.scp03_decrypt_command_data(scp.keys.s_enc, scp.counter, body)
            except ValueError:
                chan.scp = None
                raise CardError(apdu.SW_SM_INCORRECT) from None
        return Command(cmd.cla & ~0x04, cmd.ins, cmd.p1, cmd.p2, data, cmd.le)

    def _external_authenticate(
        self, chan: Channel, scp: Scp03Session, cmd: Command, body: bytes
    ) -> None:
        if len(body) != 8:
            chan.scp = None
            raise CardError(apdu.SW_WRONG_LENGTH)
        if cmd.p1 not in _SECURE_LEVELS or cmd.p2 != 0:
            chan.scp = None
            raise CardError(apdu.SW_WRONG_P1P2)
        expected = crypto.scp03_host_cryptogram(
            scp.keys.s_mac, scp.host_challenge, scp.card_challenge
        )
        if not hmac.compare_digest(expected, body):
            chan.scp = None
            raise CardError(apdu.SW_VERIFY_FAILED)
        scp.level = cmd.p1
        scp.authenticated = True

    def _wrap_response(self, scp: Scp03Session, data: bytes, sw: int) -> bytes:
        if scp.level & 0x20 and data:
            data = crypto.scp03_encrypt_response_data(scp.keys.s_enc, scp.counter, data)
        if scp.level & 0x10:
            data += crypto.scp03_r_mac(scp.keys.s_rmac, scp.chaining, data, apdu.sw_bytes(sw))[:8]
        return data

    # -- dispatch ------------------------------------------------------------------------------

    def _execute(self, chan: Channel, cmd: Command, secure: bool, proprietary: bool) -> bytes:
        ins = cmd.ins
        if proprietary:
            if not self.profile.card_manager:
                raise CardError(apdu.SW_CLA_NOT_SUPPORTED)
            gp = {0x50: self._initialize_update, 0xF0: self._set_status, 0xF2: self._get_status}
            if ins in gp:
                return gp[ins](chan, cmd, secure)
            if ins == 0xCA:
                return self._get_data(chan, cmd, secure)
            if ins == 0x82:
                raise CardError(apdu.SW_CONDITIONS)
            raise CardError(apdu.SW_INS_NOT_SUPPORTED)
        handlers: dict[int, Callable[[Channel, Command, bool], bytes]] = {
            0xA4: self._select,
            0xB0: self._read_binary,
            0xD6: self._update_binary,
            0xE0: self._create_file,
            0xE4: self._delete_file,
            0x84: self._get_challenge,
            0x20: self._verify,
            0x24: self._change_reference,
            0x2C: self._reset_retry_counter,
            0x22: self._mse,
            0x2A: self._pso,
            0x46: self._generate,
            0x47: self._generate,
            0xCA: self._get_data,
            0xDA: self._put_data,
            0x70: self._manage_channel,
            0x82: self._external_authenticate_admin,
            0x44: self._activate_file,
        }
        if self.profile.internal_authenticate:
            handlers[0x88] = self._internal_authenticate
        if self.profile.key_operations:
            handlers[0xCB] = self._get_data_sdo
        handler = handlers.get(ins)
        if handler is None:
            raise CardError(apdu.SW_INS_NOT_SUPPORTED)
        return handler(chan, cmd, secure)

    def _personalization(
        self, chan: Channel, secure: bool, *, secret: bool = False, post_issuance: bool = False
    ) -> None:
        """Personalization: inside SCP03 only (C-DECRYPTION for secrets), never once locked;
        ``post_issuance`` commands (certificate renewal: GENERATE, CREATE and DELETE of an EF in
        an application DF) stay open to the issuer after the close, at C-DEC and R-MAC only."""
        if not self.profile.card_manager:
            raise CardError(apdu.SW_CONDITIONS)
        if not secure or chan.scp is None:
            raise CardError(apdu.SW_SECURITY_STATUS)
        if self.state.lifecycle == LC_LOCKED:
            if not post_issuance:
                raise CardError(apdu.SW_CONDITIONS)
            if chan.scp.level & 0x12 != 0x12:
                raise CardError(apdu.SW_SECURITY_STATUS)
        if secret and not chan.scp.level & 0x02:
            raise CardError(apdu.SW_SECURITY_STATUS)

    def _issuer_codes(self, chan: Channel, secure: bool) -> None:
        """Setting a PIN or PUK outright (CHANGE REFERENCE DATA, P1 01): the issuer only, inside
        SCP03 with C-DECRYPTION. Unlike the rest of personalization it stays open once the
        lifecycle is closed: new codes after issuance are written this way (the try counter
        starts again at its maximum)."""
        if not self.profile.card_manager:
            raise CardError(apdu.SW_CONDITIONS)
        if not secure or chan.scp is None or not chan.scp.level & 0x02:
            raise CardError(apdu.SW_SECURITY_STATUS)

    def _allowed(self, node: Node, mode: int, secure: bool) -> bool:
        sm = secure
        verified = {ref & 0x0F for ref in self.verified}
        return ac_satisfied(node.condition(mode), secure=sm, verified_pins=verified)

    # -- GlobalPlatform ------------------------------------------------------------------------

    def _initialize_update(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        if cmd.p1 not in (0, self.state.kvn) or cmd.p2 != 0:
            raise CardError(apdu.SW_REF_NOT_FOUND)
        if len(cmd.data) != 8:
            raise CardError(apdu.SW_WRONG_LENGTH)
        self.state.seq_counter = (self.state.seq_counter + 1) & 0xFFFFFF
        self.dirty = True
        card_challenge = self.rng(8)
        keys = crypto.scp03_session_keys(
            self.state.key_enc, self.state.key_mac, cmd.data, card_challenge
        )
        chan.scp = Scp03Session(keys=keys, host_challenge=cmd.data, card_challenge=card_challenge)
        cryptogram = crypto.scp03_card_cryptogram(keys.s_mac, cmd.data, card_challenge)
        return (
            self.state.serial
            + bytes([self.state.kvn, 0x03, SCP03_I_PARAMETER])
            + card_challenge
            + cryptogram
            + self.state.seq_counter.to_bytes(3, "big")
        )

    def _set_status(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        if not secure:
            raise CardError(apdu.SW_SECURITY_STATUS)
        if cmd.p1 != 0x80 or cmd.p2 not in _LC_ORDER:
            raise CardError(apdu.SW_WRONG_P1P2)
        if _LC_ORDER.index(cmd.p2) < _LC_ORDER.index(self.state.lifecycle):
            raise CardError(apdu.SW_CONDITIONS)
        if cmd.p2 != self.state.lifecycle:
            self.state.lifecycle = cmd.p2
            self.dirty = True
        return b""

    def _get_status(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        if cmd.p1 != 0x80:
            raise CardError(apdu.SW_REF_NOT_FOUND)
        if cmd.p2 == 0x00:
            return bytes([len(ISD_AID)]) + ISD_AID + bytes([self.state.lifecycle, 0x9E])
        if cmd.p2 == 0x02:
            body = tlv.encode(0x4F, ISD_AID) + tlv.encode(0x9F70, bytes([self.state.lifecycle]))
            return tlv.encode(0xE3, body + tlv.encode(0xC5, b"\x9e\xfe\x80"))
        raise CardError(apdu.SW_WRONG_P1P2)

    # -- ISO 7816-4 file system ----------------------------------------------------------------

    def _select(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        p1, p2, data = cmd.p1, cmd.p2, cmd.data
        if p2 & 0xF3:
            raise CardError(apdu.SW_WRONG_P1P2)
        no_answer = p2 & 0x0C == 0x0C
        if p1 == 0x04:
            if not data and self.profile.card_manager:
                data = ISD_AID
            if self.profile.card_manager and data == ISD_AID:
                chan.isd, chan.df, chan.ef = True, self.state.mf, None
                fci = tlv.encode(0x84, ISD_AID) + tlv.encode(0xA5, tlv.encode(0x9F6E, b"\x00"))
                return b"" if no_answer else tlv.encode(0x6F, fci)
            if data in self.profile.applets:
                chan.isd, chan.df, chan.ef = False, self.state.mf, None
                return b"" if no_answer else tlv.encode(0x6F, tlv.encode(0x84, data))
            if not 1 <= len(data) <= 16:
                raise CardError(apdu.SW_WRONG_LENGTH)
            found = self.state.mf.find_by_name(data)
            if found is None:
                raise CardError(apdu.SW_FILE_NOT_FOUND)
            return self._selected(chan, found, no_answer)
        if p1 == 0x03:
            if data:
                raise CardError(apdu.SW_WRONG_LENGTH)
            target = chan.df.parent or chan.df
            return self._selected(chan, target, no_answer)
        if len(data) % 2:
            raise CardError(apdu.SW_WRONG_LENGTH)
        fids = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        if p1 in (0x00, 0x01, 0x02):
            if len(fids) > 1:
                raise CardError(apdu.SW_WRONG_LENGTH)
            if not fids or fids[0] == MF_FID:
                return self._selected(chan, self.state.mf, no_answer)
            node = self._find_fid(chan.df, fids[0])
            if node is None or (p1 == 0x01 and not node.df) or (p1 == 0x02 and node.df):
                raise CardError(apdu.SW_FILE_NOT_FOUND)
            return self._selected(chan, node, no_answer)
        if p1 in (0x08, 0x09):
            if not fids:
                raise CardError(apdu.SW_WRONG_LENGTH)
            node = self.state.mf if p1 == 0x08 else chan.df
            if fids[0] == MF_FID:  # a path from the current DF may start at the MF (CPx cards)
                node, fids = self.state.mf, fids[1:]
            for fid in fids:
                nxt = node.child(fid) if node.df else None
                if nxt is None:
                    raise CardError(apdu.SW_FILE_NOT_FOUND)
                node = nxt
            return self._selected(chan, node, no_answer)
        raise CardError(apdu.SW_WRONG_P1P2)

    @staticmethod
    def _find_fid(df: Node, fid: int) -> Node | None:
        found = df.child(fid)
        if found is not None:
            return found
        if df.fid == fid:
            return df
        parent = df.parent
        if parent is not None:
            if parent.fid == fid:
                return parent
            return parent.child(fid)
        return None

    def _selected(self, chan: Channel, node: Node, no_answer: bool) -> bytes:
        if node.df:
            chan.df, chan.ef = node, None
        else:
            assert node.parent is not None
            chan.df, chan.ef = node.parent, node
        return b"" if no_answer else node.fcp()

    def _binary_target(self, chan: Channel, cmd: Command) -> tuple[Node, int]:
        if cmd.p1 & 0x80:
            if cmd.p1 & 0x60:
                raise CardError(apdu.SW_WRONG_P1P2)
            sfi = cmd.p1 & 0x1F
            node = next((c for c in chan.df.children if not c.df and c.sfi == sfi), None)
            if node is None:
                raise CardError(apdu.SW_FILE_NOT_FOUND)
            chan.ef = node
            return node, cmd.p2
        if chan.ef is None:
            raise CardError(apdu.SW_NO_CURRENT_EF)
        return chan.ef, (cmd.p1 << 8) | cmd.p2

    def _read_binary(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        if cmd.data:
            raise CardError(apdu.SW_WRONG_LENGTH)
        node, offset = self._binary_target(chan, cmd)
        if not self._allowed(node, AM_READ, secure):
            raise CardError(apdu.SW_SECURITY_STATUS)
        if offset > node.size:
            raise CardError(apdu.SW_WRONG_OFFSET)
        le = cmd.le if cmd.le is not None else 256
        out = bytes(node.data[offset : offset + le])
        if len(out) < le and cmd.le not in (None, 256):
            raise _Done(out, apdu.SW_EOF)
        return out

    def _update_binary(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        if not cmd.data:
            raise CardError(apdu.SW_WRONG_LENGTH)
        node, offset = self._binary_target(chan, cmd)
        if not self._allowed(node, AM_UPDATE, secure):
            raise CardError(apdu.SW_SECURITY_STATUS)
        if offset > node.size:
            raise CardError(apdu.SW_WRONG_OFFSET)
        if offset + len(cmd.data) > node.size:
            raise CardError(apdu.SW_WRONG_LENGTH)
        node.data[offset : offset + len(cmd.data)] = cmd.data
        self.dirty = True
        return b""

    def _create_file(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        try:
            node = node_from_fcp(cmd.data)
        except ValueError:
            node = None
        parent = chan.df
        ef_in_application = node is not None and not node.df and parent is not self.state.mf
        self._personalization(chan, secure, post_issuance=ef_in_application)
        if cmd.p1 or cmd.p2:
            raise CardError(apdu.SW_WRONG_P1P2)
        if node is None:
            raise CardError(apdu.SW_WRONG_DATA)
        if parent.child(node.fid) is not None or node.fid == parent.fid:
            raise CardError(apdu.SW_FILE_EXISTS)
        if node.df and node.name and self.state.mf.find_by_name(node.name) is not None:
            raise CardError(apdu.SW_FILE_EXISTS)
        if self.state.mf.used_bytes() + node.used_bytes() > self.state.capacity:
            raise CardError(apdu.SW_NOT_ENOUGH_MEMORY)
        parent.add(node)
        self.dirty = True
        self._selected(chan, node, True)
        return b""

    def _delete_file(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        if cmd.data and len(cmd.data) == 2:
            target = chan.df.child(int.from_bytes(cmd.data, "big"))
        else:
            target = chan.ef or chan.df
        ef_in_application = chan.df is not self.state.mf and (target is None or not target.df)
        self._personalization(chan, secure, post_issuance=ef_in_application)
        if cmd.p1 or cmd.p2:
            raise CardError(apdu.SW_WRONG_P1P2)
        if cmd.data:
            if len(cmd.data) != 2:
                raise CardError(apdu.SW_WRONG_LENGTH)
            node = chan.df.child(int.from_bytes(cmd.data, "big"))
        else:
            node = chan.ef or chan.df
        if node is None:
            raise CardError(apdu.SW_FILE_NOT_FOUND)
        if node.parent is None:
            raise CardError(apdu.SW_CONDITIONS)
        if not self._allowed(node, AM_DELETE, secure):
            raise CardError(apdu.SW_SECURITY_STATUS)
        parent = node.parent
        parent.children.remove(node)
        for other in self.channels.values():
            if other.df is node or other.ef is node or node in _ancestors(other.df):
                other.df, other.ef = parent, None
        self.dirty = True
        return b""

    # -- PIN, PUK, admin key -------------------------------------------------------------------

    def _get_challenge(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        if cmd.p1 or cmd.p2:
            raise CardError(apdu.SW_WRONG_P1P2)
        if cmd.data or cmd.le not in self.profile.challenge_lengths:
            raise CardError(apdu.SW_WRONG_LENGTH)
        self.challenge = self.rng(cmd.le)
        return self.challenge

    def _pin(self, p2: int) -> PinObject:
        pin = (
            self.state.pins.get(p2)
            or self.state.pins.get(p2 | 0x80)
            or self.state.pins.get(p2 & 0x7F)
        )
        if pin is None:
            raise CardError(apdu.SW_REF_NOT_FOUND)
        return pin

    def _check_format(self, pin: PinObject, value: bytes) -> None:
        if not pin.min_len <= len(value) <= pin.max_len or not value.isdigit():
            raise CardError(apdu.SW_WRONG_LENGTH)

    def _try_pin(self, pin: PinObject, value: bytes) -> None:
        """Compare a presented value; counts the try and raises 63Cx / 6983 on failure."""
        if not pin.digest:
            raise CardError(apdu.SW_REF_DATA_UNUSABLE)
        if pin.tries_left == 0:
            raise CardError(apdu.SW_AUTH_BLOCKED)
        self._check_format(pin, value)
        if hmac.compare_digest(pin_digest(self.state.serial, pin.ref, value), pin.digest):
            if pin.tries_left != pin.tries_max:
                pin.tries_left = pin.tries_max
                self.dirty = True
            return
        pin.tries_left -= 1
        self.verified.discard(pin.ref)
        self.dirty = True
        raise CardError(0x63C0 | pin.tries_left)

    def _set_pin(self, pin: PinObject, value: bytes) -> None:
        self._check_format(pin, value)
        pin.digest = pin_digest(self.state.serial, pin.ref, value)
        pin.tries_left = pin.tries_max
        self.dirty = True

    def _verify(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        if cmd.p1 == 0xFF:
            self.verified.discard(self._pin(cmd.p2).ref)
            return b""
        if cmd.p1 != 0x00:
            raise CardError(apdu.SW_WRONG_P1P2)
        pin = self._pin(cmd.p2)
        if not cmd.data:
            if not pin.digest:
                raise CardError(apdu.SW_REF_DATA_UNUSABLE)
            if pin.tries_left == 0:
                raise CardError(apdu.SW_AUTH_BLOCKED)
            if pin.ref in self.verified:
                return b""
            raise CardError(0x63C0 | pin.tries_left)
        self._try_pin(pin, cmd.data)
        self.verified.add(pin.ref)
        return b""

    def _change_reference(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        if cmd.p2 & 0x7F == ADMIN_KEY_REF & 0x7F:
            if cmd.p1 != 0x01:
                raise CardError(apdu.SW_WRONG_P1P2)
            self._personalization(chan, secure, secret=True)
            if len(cmd.data) != 17:
                raise CardError(apdu.SW_WRONG_LENGTH)
            self.state.admin = AdminKey(version=cmd.data[0], key=bytes(cmd.data[1:]))
            self.dirty = True
            return b""
        pin = self._pin(cmd.p2)
        if cmd.p1 == 0x01:
            self._issuer_codes(chan, secure)
            self._set_pin(pin, cmd.data)
            return b""
        if cmd.p1 != 0x00:
            raise CardError(apdu.SW_WRONG_P1P2)
        if len(cmd.data) % 2:
            raise CardError(apdu.SW_WRONG_LENGTH)
        half = len(cmd.data) // 2
        self._check_format(pin, cmd.data[half:])
        self._try_pin(pin, cmd.data[:half])
        self._set_pin(pin, cmd.data[half:])
        self.verified.add(pin.ref)
        return b""

    def _reset_retry_counter(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        pin = self._pin(cmd.p2)
        if not pin.digest:
            raise CardError(apdu.SW_REF_DATA_UNUSABLE)
        if cmd.p1 == 0x02:
            return self._offline_unblock(pin, cmd.data)
        if cmd.p1 not in (0x00, 0x01, 0x03):
            raise CardError(apdu.SW_WRONG_P1P2)
        puk = self.state.pins.get(pin.puk_ref) if pin.puk_ref else None
        if puk is None:
            raise CardError(apdu.SW_CONDITIONS)
        if cmd.p1 == 0x01:
            self._try_pin(puk, cmd.data)
            pin.tries_left = pin.tries_max
            self.dirty = True
            return b""
        if len(cmd.data) <= puk.max_len:
            raise CardError(apdu.SW_WRONG_LENGTH)
        new = cmd.data[puk.max_len :]
        self._check_format(pin, new)
        self._try_pin(puk, cmd.data[: puk.max_len])
        self._set_pin(pin, new)
        return b""

    def _external_authenticate_admin(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        """Offline unblock, step 2: the helpdesk's response to the last GET CHALLENGE."""
        if cmd.p1 != 0 or cmd.p2 & 0x7F != ADMIN_KEY_REF & 0x7F:
            raise CardError(apdu.SW_REF_NOT_FOUND)
        admin = self.state.admin
        if admin is None:
            raise CardError(apdu.SW_REF_DATA_UNUSABLE)
        if admin.tries_left == 0:
            raise CardError(apdu.SW_AUTH_BLOCKED)
        if len(cmd.data) != crypto.UNBLOCK_RESPONSE_LENGTH:
            raise CardError(apdu.SW_WRONG_LENGTH)
        challenge, self.challenge = self.challenge, b""
        if len(challenge) != crypto.UNBLOCK_CHALLENGE_LENGTH:
            raise CardError(apdu.SW_CONDITIONS)
        pin_ref = self.profile.user_pin_ref
        expected = crypto.unblock_response(
            admin.key, self.state.serial, admin.version, pin_ref, challenge
        )
        if not hmac.compare_digest(expected, cmd.data):
            admin.tries_left -= 1
            self.dirty = True
            raise CardError(apdu.SW_SECURITY_STATUS)
        if admin.tries_left != ADMIN_KEY_TRIES:
            admin.tries_left = ADMIN_KEY_TRIES
            self.dirty = True
        self.admin_authenticated = True
        return b""

    def _offline_unblock(self, pin: PinObject, data: bytes) -> bytes:
        if self.admin_authenticated and len(data) <= pin.max_len:
            self._set_pin(pin, data)
            self.admin_authenticated = False
            return b""
        admin = self.state.admin
        if admin is None:
            raise CardError(apdu.SW_REF_DATA_UNUSABLE)
        if admin.tries_left == 0:
            raise CardError(apdu.SW_AUTH_BLOCKED)
        challenge, self.challenge = self.challenge, b""
        if len(challenge) != crypto.UNBLOCK_CHALLENGE_LENGTH:
            raise CardError(apdu.SW_CONDITIONS)
        size = crypto.UNBLOCK_RESPONSE_LENGTH
        if len(data) <= size:
            raise CardError(apdu.SW_WRONG_LENGTH)
        self._check_format(pin, data[size:])
        expected = crypto.unblock_response(
            admin.key, self.state.serial, admin.version, pin.ref, challenge
        )
        if not hmac.compare_digest(expected, data[:size]):
            admin.tries_left -= 1
            self.dirty = True
            raise CardError(0x63C0 | min(admin.tries_left, 15))
        admin.tries_left = ADMIN_KEY_TRIES
        self._set_pin(pin, data[size:])
        return b""

    # -- data objects --------------------------------------------------------------------------

    def _get_data(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        tag = (cmd.p1 << 8) | cmd.p2
        if tag == CPLC_TAG:
            cplc = bytes.fromhex("4790") + bytes.fromhex("5040") + bytes(6) + self.state.serial[-4:]
            return tlv.encode(CPLC_TAG, cplc.ljust(42, b"\x00"))
        if tag == ADMIN_KEY_P1P2:
            if self.state.admin is None:
                raise CardError(apdu.SW_REF_NOT_FOUND)
            return bytes([self.state.admin.version, self.state.admin.tries_left])
        if tag == 0x0066 and chan.isd:
            return tlv.encode(
                0x66, tlv.encode(0x73, tlv.encode(0x06, bytes.fromhex("2A864886FC6B01")))
            )
        if tag == 0x00C1:  # lifecycle, readable for the stations' identification step
            return bytes([self.state.lifecycle])
        raise CardError(apdu.SW_REF_NOT_FOUND)

    def _put_data(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        tag = (cmd.p1 << 8) | cmd.p2
        if tag != ADMIN_KEY_P1P2:
            raise CardError(apdu.SW_REF_NOT_FOUND)
        self._personalization(chan, secure, secret=True)
        if len(cmd.data) != 1 + 16:
            raise CardError(apdu.SW_WRONG_LENGTH)
        self.state.admin = AdminKey(version=cmd.data[0], key=bytes(cmd.data[1:]))
        self.dirty = True
        return b""

    def _get_data_sdo(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        """IAS-ECC GET DATA of a security data object's public part (its DOCP).

        ``00 CB 3F FF 4D L 70 L BF class ref L tags``: the PIN (class 01) from the MF, a private
        key (class 10) from its application DF; answered ``BF class ref L A0{…}``.
        """
        if (cmd.p1, cmd.p2) != (0x3F, 0xFF):
            raise CardError(apdu.SW_WRONG_P1P2)
        data = cmd.data
        if len(data) < 8 or data[0] != 0x4D or data[2] != 0x70 or data[4] != 0xBF:
            raise CardError(apdu.SW_WRONG_DATA)
        sdo_class, sdo_ref = data[5] & 0x7F, data[6] & 0x3F
        in_mf = chan.df is self.state.mf
        if sdo_class == SDO_CLASS_CHV and in_mf:
            pin = self.state.pins.get(sdo_ref | 0x80)
            if pin is None:
                raise CardError(apdu.SW_REF_NOT_FOUND)
            docp = (
                tlv.encode(0x9A, bytes([pin.tries_max]))
                + tlv.encode(0x9B, bytes([pin.tries_left]))
                + tlv.encode(0x8C, b"\x60\x00\x00")  # CHANGE and VERIFY: always (PIN in data)
            )
            body = tlv.encode(0xA0, docp) + tlv.encode(
                0x7F41,
                tlv.encode(0x80, bytes([pin.max_len])) + tlv.encode(0x81, bytes([pin.min_len])),
            )
        elif sdo_class == SDO_CLASS_RSA_PRIVATE and not in_mf:
            ref = sdo_ref | 0x80
            operations = dict(self.profile.key_operations).get(ref)
            if operations is None or ref not in self.state.keys:
                raise CardError(apdu.SW_REF_NOT_FOUND)
            bits = self._private_key(ref).key_size
            scbs = bytes(0x10 | 0x01 for mask in (0x40, 0x20, 0x10) if operations & mask)
            docp = tlv.encode(0x80, bits.to_bytes(2, "big")) + tlv.encode(
                0x8C,
                bytes([operations]) + scbs,  # user authentication, SE 1
            )
            body = tlv.encode(0xA0, docp)
        else:
            raise CardError(apdu.SW_REF_NOT_FOUND)
        return bytes(data[4:7]) + tlv.encode_length(len(body)) + body

    def _activate_file(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        """ACTIVATE FILE on the MF (inside SCP03) closes personalization for good.

        Repeated on a closed card it answers 9000 and changes nothing, so that a session resumed
        after a tear between the close and its checkpoint can send it again.
        """
        if cmd.p1 or cmd.p2 or cmd.data:
            raise CardError(apdu.SW_WRONG_P1P2)
        if not self.profile.card_manager:
            raise CardError(apdu.SW_CONDITIONS)
        if not secure or chan.scp is None:
            raise CardError(apdu.SW_SECURITY_STATUS)
        if chan.ef is not None or chan.df is not self.state.mf:
            raise CardError(apdu.SW_CONDITIONS)
        if self.state.lifecycle == LC_LOCKED:
            return b""
        self._personalization(chan, secure)
        self.state.lifecycle = LC_LOCKED
        self.dirty = True
        return b""

    def _manage_channel(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        if cmd.p1 == 0x00:
            if cmd.p2:
                raise CardError(apdu.SW_WRONG_P1P2)
            free = next((n for n in (1, 2, 3) if n not in self.channels), None)
            if free is None:
                raise CardError(apdu.SW_CHANNEL_NOT_SUPPORTED)
            self.channels[free] = Channel(df=self.state.mf)
            return bytes([free])
        if cmd.p1 == 0x80:
            number = cmd.p2 or cmd.channel
            if number == 0 or number not in self.channels:
                raise CardError(apdu.SW_WRONG_P1P2)
            del self.channels[number]
            return b""
        raise CardError(apdu.SW_WRONG_P1P2)

    # -- keys and cryptography -----------------------------------------------------------------

    def _mse(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        if cmd.p1 == 0xF3:
            chan.se.clear()
            return b""
        hash_template = cmd.p2 == 0xAA and bool(self.profile.key_operations)
        if cmd.p1 not in (0x41, 0x81) or (cmd.p2 not in (0xB6, 0xB8, 0xA4) and not hash_template):
            raise CardError(apdu.SW_WRONG_P1P2)
        try:
            items = dict(tlv.parse(cmd.data))
        except tlv.TlvError:
            raise CardError(apdu.SW_WRONG_DATA) from None
        if hash_template:  # IAS-ECC HT: the hash algorithm only (PSO HASH is not simulated)
            alg_raw = items.get(0x80, b"")
            if len(alg_raw) != 1:
                raise CardError(apdu.SW_WRONG_DATA)
            chan.se[cmd.p2] = (0, alg_raw[0])
            return b""
        ref_raw = items.get(0x84) or items.get(0x83)
        if ref_raw is None or len(ref_raw) != 1:
            raise CardError(apdu.SW_WRONG_DATA)
        ref = self._key_ref(ref_raw[0])
        alg_raw = items.get(0x80, b"")
        default = ALG_RSA_PKCS1_DECIPHER if cmd.p2 == 0xB8 else ALG_RSA_PKCS1
        alg = alg_raw[0] if len(alg_raw) == 1 else default
        chan.se[cmd.p2] = (ref, alg)
        return b""

    def _key_ref(self, raw: int) -> int:
        """The key slot a reference names: as given, or with/without the IAS-ECC local bit."""
        for ref in (raw, raw | 0x80, raw & 0x7F):
            if ref in self.state.keys:
                return ref
        raise CardError(apdu.SW_REF_NOT_FOUND)

    def _private_key(self, ref: int) -> rsa_types.RSAPrivateKey:
        key = self._keys.get(ref)
        slot = self.state.keys[ref]
        if key is None:
            key = self._keys[ref] = rsa_ops.load(slot.der)
        return key

    def _key_for(self, chan: Channel, crt: int) -> tuple[rsa_types.RSAPrivateKey, int]:
        se = chan.se.get(crt)
        if se is None:
            raise CardError(apdu.SW_CONDITIONS)
        ref, alg = se
        slot = self.state.keys.get(ref)
        if slot is None:
            raise CardError(apdu.SW_REF_NOT_FOUND)
        operations = dict(self.profile.key_operations)
        if operations and not operations.get(ref, 0) & _CRT_OPERATION[crt]:
            raise CardError(apdu.SW_CONDITIONS)  # the key's SDO does not allow this operation
        if slot.pin_ref not in self.verified:
            raise CardError(apdu.SW_SECURITY_STATUS)
        return self._private_key(ref), alg

    def _pso(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        p1p2 = (cmd.p1 << 8) | cmd.p2
        if p1p2 == 0x9E9A:
            key, alg = self._key_for(chan, 0xB6)
            if not cmd.data:
                raise CardError(apdu.SW_WRONG_LENGTH)
            try:
                if alg == ALG_RSA_PSS:
                    return rsa_ops.sign_pss(key, cmd.data)
                if alg == ALG_RSA_PKCS1:
                    return rsa_ops.sign_pkcs1(key, cmd.data)
            except rsa_ops.RsaInputError:
                raise CardError(apdu.SW_WRONG_LENGTH) from None
            raise CardError(apdu.SW_FUNC_NOT_SUPPORTED)
        if p1p2 == 0x8086:
            key, alg = self._key_for(chan, 0xB8)
            if len(cmd.data) < 2 or cmd.data[0] not in (0x00, 0x81):
                raise CardError(apdu.SW_WRONG_DATA)
            if alg not in (ALG_RSA_PKCS1_DECIPHER, ALG_RSA_RAW):
                raise CardError(apdu.SW_FUNC_NOT_SUPPORTED)
            try:
                return rsa_ops.decipher(key, cmd.data[1:], unpad=alg != ALG_RSA_RAW)
            except rsa_ops.RsaInputError:
                raise CardError(apdu.SW_WRONG_DATA) from None
        raise CardError(apdu.SW_WRONG_P1P2)

    def _internal_authenticate(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        key, _ = self._key_for(chan, 0xA4)
        try:
            return rsa_ops.sign_pkcs1(key, cmd.data) if cmd.data else b""
        except rsa_ops.RsaInputError:
            raise CardError(apdu.SW_WRONG_LENGTH) from None

    def _generate(self, chan: Channel, cmd: Command, secure: bool) -> bytes:
        ref = cmd.p2 & 0x7F
        if cmd.data:
            try:
                crt = tlv.find(cmd.data, 0xAC)
                fields = dict(tlv.parse(crt if crt is not None else cmd.data))
            except tlv.TlvError:
                raise CardError(apdu.SW_WRONG_DATA) from None
            ref_raw, alg = fields.get(0x84, b""), fields.get(0x80, b"\x07")
            if len(ref_raw) != 1 or alg != b"\x07":
                raise CardError(apdu.SW_WRONG_DATA)
            ref = ref_raw[0] & 0x7F
        if ref == 0:
            raise CardError(apdu.SW_WRONG_P1P2)
        if cmd.p1 == 0x01:
            if ref not in self.state.keys:
                raise CardError(apdu.SW_REF_NOT_FOUND)
            return rsa_ops.public_key_template(self._private_key(ref))
        if cmd.p1 != 0x00:
            raise CardError(apdu.SW_WRONG_P1P2)
        self._personalization(chan, secure, post_issuance=True)
        key = self.keygen()
        if key.key_size != 2048:
            raise CardError(apdu.SW_MEMORY_FAILURE)
        self.state.keys[ref] = KeySlot(
            ref=ref, der=rsa_ops.dump(key), pin_ref=self.profile.user_pin_ref
        )
        self._keys[ref] = key
        self.dirty = True
        return rsa_ops.public_key_template(key)


class _Done(CardError):
    """Ends a command early with data (used where the answer is decided mid-way)."""

    def __init__(self, data: bytes, sw: int = apdu.SW_OK) -> None:
        super().__init__(sw)
        self.data = data


def _ancestors(node: Node) -> list[Node]:
    out: list[Node] = []
    cur: Node | None = node
    while cur is not None:
        out.append(cur)
        cur = cur.parent
    return out
