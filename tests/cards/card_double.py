"""A test double of a CPS4 card: pure code answering APDUs, for tests and benchmarks only.

This is NOT the virtual card (``cardsim`` is). It implements just enough of the card side to answer
the CPS4 program's commands *correctly*: it checks every SCP03 C-MAC and host cryptogram,
decrypts C-ENC, produces R-MAC/R-ENC, runs DESFire EV2 authentication, checks command MACs and
ChangeKey CRCs, and enforces the access rules the product definition declares. It shares only the
vector-verified primitives of ``cards.crypto`` (and TLV/APDU parsing) with the host, never its
session logic (``cards.scp03``, ``cards.desfire``), so a host-side logic error shows up here.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa

from cards import crypto, tlv
from cards.apdu import CommandApdu, parse_cla
from cards.products import CPS4, Access, Product

SW_OK = b"\x90\x00"


def sw(value: int) -> bytes:
    return value.to_bytes(2, "big")


class KeyPool:
    """Pre-generated RSA keys handed out in turn (key generation is the card's cost, not ours)."""

    def __init__(self, size: int = 2, bits: int = 2048) -> None:
        self._keys = [
            rsa.generate_private_key(public_exponent=65537, key_size=bits) for _ in range(size)
        ]
        self._cycle = itertools.cycle(self._keys)

    def __call__(self) -> rsa.RSAPrivateKey:
        return next(self._cycle)


_SC = {0x00: Access.ALWAYS, 0x11: Access.PIN, 0x40: Access.SM, 0xFF: Access.NEVER}


@dataclass
class Ef:
    fid: int
    size: int
    read: Access
    update: Access
    data: bytearray


@dataclass
class Df:
    fid: int
    aid: bytes = b""
    children: dict[int, Df | Ef] = field(default_factory=dict)
    parent: Df | None = None


class CardError(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


# --------------------------------------------------------------------------------------------
# Contact chip
# --------------------------------------------------------------------------------------------


@dataclass
class _Scp:
    keys: crypto.Scp03SessionKeys
    host_challenge: bytes
    card_challenge: bytes
    level: int = 0
    chain: bytes = bytes(16)
    counter: int = 1
    authenticated: bool = False


class ContactChip:
    """The ChipDoc-like applet with an ISO 7816 file system and SCP03 (card side)."""

    def __init__(
        self,
        *,
        product: Product,
        serial: bytes,
        kdd: bytes,
        enc: bytes,
        mac: bytes,
        key_source: Callable[[], rsa.RSAPrivateKey],
        rng: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.product = product
        self.kdd = kdd
        self.static_enc, self.static_mac = enc, mac
        self.key_source = key_source
        self.rng = rng
        self.mf = Df(0x3F00)
        self.mf.children[0xD003] = Ef(0xD003, 10, Access.ALWAYS, Access.NEVER, bytearray(serial))
        self.selected: dict[int, bool] = {}
        self.current_df: dict[int, Df] = {}
        self.current_ef: dict[int, Ef | None] = {}
        self.scp: dict[int, _Scp] = {}
        self.pending: dict[int, bytes] = {}
        self.operational = False
        self.pins: dict[int, bytes] = {}
        self.tries: dict[int, int] = {}
        self.verified: set[int] = set()
        self.admin_key: bytes | None = None
        self.admin_version = 0
        self.challenge: bytes | None = None
        self.admin_authenticated = False
        self.admin_tries = product.admin_key_tries or 0
        self.keys: dict[int, rsa.RSAPrivateKey] = {}
        self.mse_key: int | None = None
        self.sequence = 1
        self.commands = 0

    # --- framing ------------------------------------------------------------------------

    def __call__(self, raw: bytes) -> bytes:
        self.commands += 1
        try:
            apdu = CommandApdu.decode(raw)
        except ValueError:
            return sw(0x6700)
        cla = parse_cla(apdu.cla)
        channel = cla.channel
        if apdu.ins == 0xC0 and not cla.secure_messaging:
            return self._get_response(channel, apdu)
        self.pending.pop(channel, None)
        if cla.proprietary and apdu.ins == 0x82:
            return self._external_authenticate_gp(channel, raw)
        if cla.secure_messaging:
            return self._chunk(channel, self._secure(channel, apdu, raw))
        try:
            data = self._dispatch(channel, apdu, secure=False)
            return self._chunk(channel, data + SW_OK)
        except CardError as exc:
            return sw(exc.status)

    def _chunk(self, channel: int, response: bytes) -> bytes:
        if len(response) - 2 <= 256:
            return response
        self.pending[channel] = response
        return sw(0x6100 | min(256, len(response) - 2) & 0xFF)

    def _get_response(self, channel: int, apdu: CommandApdu) -> bytes:
        pending = self.pending.pop(channel, None)
        if pending is None:
            return sw(0x6985)
        data, status = pending[:-2], pending[-2:]
        n = apdu.le or 256
        head, rest = data[:n], data[n:]
        if rest:
            self.pending[channel] = rest + status
            return head + sw(0x6100 | min(256, len(rest)) & 0xFF)
        return head + status

    # --- SCP03 card side ------------------------------------------------------------------

    def _secure(self, channel: int, apdu: CommandApdu, raw: bytes) -> bytes:
        scp = self.scp.get(channel)
        if scp is None or not scp.authenticated:
            return sw(0x6982)
        if len(apdu.data) < 8:
            self.scp.pop(channel)
            return sw(0x6988)
        body, mac = apdu.data[:-8], apdu.data[-8:]
        mac_input = CommandApdu(
            apdu.cla, apdu.ins, apdu.p1, apdu.p2, apdu.data, extended=apdu.extended
        ).encode()[:-8]
        full = crypto.scp03_c_mac(scp.keys.s_mac, scp.chain, mac_input)
        if not crypto.constant_time_equal(full[:8], mac):
            self.scp.pop(channel)
            return sw(0x6988)
        scp.chain = full
        counter = scp.counter
        scp.counter += 1
        if scp.level & 0x02 and body:
            try:
                body = crypto.scp03_decrypt_command_data(scp.keys.s_enc, counter, body)
            except crypto.CryptoError:
                self.scp.pop(channel)
                return sw(0x6988)
        plain = CommandApdu(
            apdu.cla & ~0x04 if apdu.cla & 0x40 == 0 else apdu.cla & ~0x20,
            apdu.ins,
            apdu.p1,
            apdu.p2,
            body,
            apdu.le,
        )
        try:
            data = self._dispatch(channel, plain, secure=True)
            status = 0x9000
        except CardError as exc:
            data, status = b"", exc.status
        if not scp.level & 0x10:
            return data + sw(status)
        if status >> 8 not in (0x90, 0x62, 0x63):
            return sw(status)
        if scp.level & 0x20 and data:
            data = crypto.scp03_encrypt_response_data(scp.keys.s_enc, counter, data)
        r_mac = crypto.scp03_r_mac(scp.keys.s_rmac, full, data, sw(status))
        return data + r_mac + sw(status)

    def _initialize_update(self, channel: int, apdu: CommandApdu) -> bytes:
        if apdu.p1 not in (0x00, 0x30) or len(apdu.data) != 8:
            raise CardError(0x6A86)
        card_challenge = self.rng(8)
        keys = crypto.scp03_session_keys(
            self.static_enc, self.static_mac, apdu.data, card_challenge
        )
        self.scp[channel] = _Scp(keys, apdu.data, card_challenge)
        cryptogram = crypto.scp03_card_cryptogram(keys.s_mac, apdu.data, card_challenge)
        self.sequence += 1
        return (
            self.kdd
            + b"\x30\x03\x70"
            + card_challenge
            + cryptogram
            + self.sequence.to_bytes(3, "big")
        )

    def _external_authenticate_gp(self, channel: int, raw: bytes) -> bytes:
        apdu = CommandApdu.decode(raw)
        scp = self.scp.get(channel)
        if scp is None or len(apdu.data) != 16:
            return sw(0x6985)
        mac_input = raw[:5] + apdu.data[:8]
        full = crypto.scp03_c_mac(scp.keys.s_mac, bytes(16), mac_input)
        expected = crypto.scp03_host_cryptogram(
            scp.keys.s_mac, scp.host_challenge, scp.card_challenge
        )
        if not (
            crypto.constant_time_equal(full[:8], apdu.data[8:])
            and crypto.constant_time_equal(expected, apdu.data[:8])
        ):
            self.scp.pop(channel)
            return sw(0x6300)
        if apdu.p1 not in (0x01, 0x03, 0x11, 0x13, 0x33):
            return sw(0x6A86)
        scp.chain, scp.level, scp.counter, scp.authenticated = full, apdu.p1, 1, True
        return SW_OK

    # --- commands -------------------------------------------------------------------------

    def _dispatch(self, channel: int, apdu: CommandApdu, *, secure: bool) -> bytes:
        if apdu.cla & 0x80:
            if apdu.ins == 0x50:
                return self._initialize_update(channel, apdu)
            raise CardError(0x6D00)
        if apdu.ins not in (0x84, 0x82):
            self.challenge = None  # a challenge is good for the next command only
        if not (apdu.ins == 0x82 or (apdu.ins == 0x2C and apdu.p1 == 0x02)):
            self.admin_authenticated = False
        if apdu.ins == 0xA4:
            return self._select(channel, apdu)
        if not self.selected.get(channel):
            raise CardError(0x6985)
        handler = {
            0xB0: self._read_binary,
            0xD6: self._update_binary,
            0xE0: self._create_file,
            0xE4: self._delete_file,
            0x44: self._activate,
            0x84: self._get_challenge,
            0x20: self._verify,
            0x24: self._change_reference_data,
            0x2C: self._reset_retry_counter,
            0x22: self._mse,
            0x2A: self._pso,
            0x47: self._generate,
            0x82: self._external_authenticate_iso,
        }.get(apdu.ins)
        if handler is None:
            raise CardError(0x6D00)
        return handler(channel, apdu, secure)

    def _select(self, channel: int, apdu: CommandApdu) -> bytes:
        if apdu.p1 == 0x04:
            if apdu.data != self.product.contact.applet_aid:
                raise CardError(0x6A82)
            self.selected[channel] = True
            self.current_df[channel] = self.mf
            self.current_ef[channel] = None
            return b""
        if not self.selected.get(channel):
            raise CardError(0x6985)
        fids = [int.from_bytes(apdu.data[i : i + 2], "big") for i in range(0, len(apdu.data), 2)]
        if apdu.p1 == 0x00 and fids == [0x3F00]:
            self.current_df[channel], self.current_ef[channel] = self.mf, None
            return b""
        node: Df = self.mf if apdu.p1 in (0x08, 0x00) else self.current_df[channel]
        if apdu.p1 == 0x00:
            node = self.current_df[channel]
        target: Df | Ef | None = node
        for fid in fids:
            if not isinstance(target, Df) or fid not in target.children:
                raise CardError(0x6A82)
            target = target.children[fid]
        if isinstance(target, Df):
            self.current_df[channel], self.current_ef[channel] = target, None
        else:
            parent = node
            for fid in fids[:-1]:
                child = parent.children[fid]
                assert isinstance(child, Df)
                parent = child
            self.current_df[channel], self.current_ef[channel] = parent, target
        return b""

    def _allowed(self, rule: Access, secure: bool) -> bool:
        if rule is Access.ALWAYS:
            return True
        if rule is Access.SM:
            return secure
        if rule is Access.PIN:
            return self.product.pin.reference in self.verified
        return False

    def _ef(self, channel: int) -> Ef:
        ef = self.current_ef.get(channel)
        if ef is None:
            raise CardError(0x6986)
        return ef

    def _read_binary(self, channel: int, apdu: CommandApdu, secure: bool) -> bytes:
        ef = self._ef(channel)
        if not self._allowed(ef.read, secure):
            raise CardError(0x6982)
        offset = apdu.p1 << 8 | apdu.p2
        if offset > len(ef.data):
            raise CardError(0x6B00)
        return bytes(ef.data[offset : offset + (apdu.le or 256)])

    def _update_binary(self, channel: int, apdu: CommandApdu, secure: bool) -> bytes:
        ef = self._ef(channel)
        if not self._allowed(ef.update, secure) or (self.operational and ef.update is Access.SM):
            raise CardError(0x6982)
        offset = apdu.p1 << 8 | apdu.p2
        if offset + len(apdu.data) > ef.size:
            raise CardError(0x6B00)
        ef.data[offset : offset + len(apdu.data)] = apdu.data
        return b""

    def _personalizing(self, secure: bool) -> None:
        if self.operational:
            raise CardError(0x6985)
        if not secure:
            raise CardError(0x6982)

    def _create_file(self, channel: int, apdu: CommandApdu, secure: bool) -> bytes:
        self._personalizing(secure)
        try:
            fcp = tlv.decode(apdu.data)[0]
            items = fcp.children()
        except (tlv.TlvError, IndexError) as exc:
            raise CardError(0x6A80) from exc
        fid = int.from_bytes(tlv.require(items, 0x83).value, "big")
        descriptor = tlv.require(items, 0x82).value[0]
        parent = self.current_df[channel]
        if fid in parent.children:
            raise CardError(0x6A89)
        security = tlv.require(items, 0x8C).value
        if descriptor == 0x38:
            df = Df(fid, tlv.require(items, 0x84).value, parent=parent)
            parent.children[fid] = df
            self.current_df[channel], self.current_ef[channel] = df, None
        else:
            size = int.from_bytes(tlv.require(items, 0x80).value, "big")
            if security[0] != 0x43:
                raise CardError(0x6A80)
            ef = Ef(fid, size, _SC[security[3]], _SC[security[2]], bytearray(size))
            parent.children[fid] = ef
            self.current_ef[channel] = ef
        return b""

    def _delete_file(self, channel: int, apdu: CommandApdu, secure: bool) -> bytes:
        self._personalizing(secure)
        fid = int.from_bytes(apdu.data, "big")
        parent = self.current_df[channel]
        if fid not in parent.children:
            raise CardError(0x6A82)
        if fid == self.product.contact.application.fid:
            self.pins.clear()
            self.keys.clear()
            self.admin_key = None
        del parent.children[fid]
        return b""

    def _activate(self, channel: int, apdu: CommandApdu, secure: bool) -> bytes:
        if self.operational and secure:
            return b""  # ISO 7816-9: activating an activated file changes nothing
        self._personalizing(secure)
        if self.current_df[channel] is not self.mf or self.current_ef[channel] is not None:
            raise CardError(0x6985)
        self.operational = True
        return b""

    def _get_challenge(self, channel: int, apdu: CommandApdu, secure: bool) -> bytes:
        self.challenge = self.rng(apdu.le or 8)
        return self.challenge

    def _verify(self, channel: int, apdu: CommandApdu, secure: bool) -> bytes:
        ref = apdu.p2
        if ref not in self.pins:
            raise CardError(0x6A88)
        if self.tries[ref] == 0:
            raise CardError(0x6983)
        if not apdu.data:
            if ref in self.verified:
                return b""
            raise CardError(0x63C0 | self.tries[ref])
        if not secrets.compare_digest(apdu.data, self.pins[ref]):
            self.tries[ref] -= 1
            self.verified.discard(ref)
            raise CardError(0x63C0 | self.tries[ref] if self.tries[ref] else 0x6983)
        self.tries[ref] = self._policy_tries(ref)
        self.verified.add(ref)
        return b""

    def _policy_tries(self, ref: int) -> int:
        puk = self.product.puk
        return puk.tries if puk is not None and ref == puk.reference else self.product.pin.tries

    def _change_reference_data(self, channel: int, apdu: CommandApdu, secure: bool) -> bytes:
        if apdu.p1 == 0x01:
            self._personalizing(secure)
            if apdu.p2 == self.product.admin_key_reference:
                if len(apdu.data) != 17:
                    raise CardError(0x6700)
                self.admin_version, self.admin_key = apdu.data[0], apdu.data[1:]
                return b""
            policy = self.product.pin if apdu.p2 == self.product.pin.reference else self.product.puk
            if policy is None or apdu.p2 != policy.reference:
                raise CardError(0x6A88)
            if (
                not policy.min_length <= len(apdu.data) <= policy.max_length
                or not apdu.data.isdigit()
            ):
                raise CardError(0x6A80)
            self.pins[apdu.p2], self.tries[apdu.p2] = apdu.data, policy.tries
            return b""
        raise CardError(0x6A86)

    def _reset_retry_counter(self, channel: int, apdu: CommandApdu, secure: bool) -> bytes:
        ref = apdu.p2
        if apdu.p1 == 0x02:
            if not self.admin_authenticated:
                raise CardError(0x6982)
            self.admin_authenticated = False
            self.pins[ref], self.tries[ref] = apdu.data, self.product.pin.tries
            return b""
        raise CardError(0x6A86)

    def _external_authenticate_iso(self, channel: int, apdu: CommandApdu, secure: bool) -> bytes:
        from cards.crypto import unblock_response

        challenge, self.challenge = self.challenge, None
        if self.admin_key is None or apdu.p2 != self.product.admin_key_reference:
            raise CardError(0x6A88)
        if challenge is None:
            raise CardError(0x6985)
        serial = bytes(self._mf_ef(0xD003).data)
        expected = unblock_response(
            self.admin_key, serial, self.admin_version, self.product.pin.reference, challenge
        )
        if self.admin_tries <= 0:
            raise CardError(0x6983)
        if not crypto.constant_time_equal(expected, apdu.data):
            self.admin_tries -= 1
            raise CardError(0x6982 if self.admin_tries else 0x6983)
        self.admin_tries = self.product.admin_key_tries or 0
        self.admin_authenticated = True
        return b""

    def _mf_ef(self, fid: int) -> Ef:
        ef = self.mf.children[fid]
        assert isinstance(ef, Ef)
        return ef

    def _mse(self, channel: int, apdu: CommandApdu, secure: bool) -> bytes:
        ref = tlv.require(tlv.decode(apdu.data), 0x84).value[0] & 0x7F
        if ref not in self.keys:
            raise CardError(0x6A88)
        self.mse_key = ref
        return b""

    def _pso(self, channel: int, apdu: CommandApdu, secure: bool) -> bytes:
        if (apdu.p1, apdu.p2) != (0x9E, 0x9A) or self.mse_key is None:
            raise CardError(0x6A86)
        if self.product.pin.reference not in self.verified:
            raise CardError(0x6982)
        key = self.keys[self.mse_key]
        numbers = key.private_numbers()
        k = key.key_size // 8
        if len(apdu.data) > k - 11:
            raise CardError(0x6700)
        em = b"\x00\x01" + b"\xff" * (k - 3 - len(apdu.data)) + b"\x00" + apdu.data
        signature = pow(int.from_bytes(em, "big"), numbers.d, numbers.public_numbers.n)
        if self.mse_key == 0x02:  # signature key: PIN "always"
            self.verified.discard(self.product.pin.reference)
        return signature.to_bytes(k, "big")

    def _generate(self, channel: int, apdu: CommandApdu, secure: bool) -> bytes:
        self._personalizing(secure)
        crt = tlv.decode(apdu.data)[0].children()
        ref = tlv.require(crt, 0x84).value[0]
        if tlv.require(crt, 0x80).value != b"\x07":
            raise CardError(0x6A80)
        key = self.key_source()
        self.keys[ref] = key
        public = key.public_key().public_numbers()
        n = public.n.to_bytes(256, "big")
        e = public.e.to_bytes(3, "big")
        return tlv.encode(0x7F49, [tlv.Tlv(0x81, n), tlv.Tlv(0x82, e)])

    def file(self, *path: int) -> Ef:
        node: Df | Ef = self.mf
        for fid in path:
            assert isinstance(node, Df)
            node = node.children[fid]
        assert isinstance(node, Ef)
        return node


# --------------------------------------------------------------------------------------------
# DESFire EV2
# --------------------------------------------------------------------------------------------


@dataclass
class _App:
    ks1: int
    ks2: int
    keys: list[bytes]
    versions: list[int]
    files: dict[int, tuple[int, int, int, bytearray]] = field(default_factory=dict)
    """file_no → (comm mode, access rights int, size, data)."""


class DesfireChip:
    """PICC with AES keys, applications, standard files and EV2 secure messaging (card side)."""

    HEADER = {0x8D: 7, 0xC4: 1, 0x5C: 1}
    MAC_COMMANDS = {0xCA, 0xCD, 0xDA, 0x6A, 0x64, 0xFC, 0x51, 0xAD}

    def __init__(
        self, *, uid: bytes, picc_key: bytes, rng: Callable[[int], bytes] = secrets.token_bytes
    ) -> None:
        self.uid = uid
        self.rng = rng
        self.picc = _App(0x0F, 0x81, [picc_key], [0])
        self.apps: dict[int, _App] = {}
        self.selected = 0
        self.format_disabled = False
        self.random_uid = False
        self._reset_auth()
        self.commands = 0

    def _reset_auth(self) -> None:
        self.auth_key: int | None = None
        self.ses: crypto.Ev2SessionKeys | None = None
        self.ti = b""
        self.ctr = 0
        self._pending_auth: tuple[int, bytes, bytes] | None = None

    def app(self) -> _App:
        return self.picc if self.selected == 0 else self.apps[self.selected]

    def __call__(self, raw: bytes) -> bytes:
        self.commands += 1
        if raw == bytes.fromhex("FFCA000000"):
            return self.uid + SW_OK
        try:
            apdu = CommandApdu.decode(raw)
        except ValueError:
            return sw(0x6700)
        if apdu.cla != 0x90:
            return sw(0x6E00)
        try:
            return self._native(apdu.ins, apdu.data) + b"\x91\x00"
        except _Frame as frame:
            return frame.data + b"\x91\xaf"
        except CardError as exc:
            if exc.status != 0xAF:
                self._reset_auth()
            return b"\x91" + bytes([exc.status])

    # --- secure messaging ---------------------------------------------------------------

    def _unwrap(self, cmd: int, data: bytes, full: bool) -> bytes:
        assert self.ses is not None
        if len(data) < 8:
            raise CardError(0x7E)
        body, mac = data[:-8], data[-8:]
        if not crypto.constant_time_equal(
            mac, crypto.ev2_command_mac(self.ses.mac, cmd, self.ctr, self.ti, body)
        ):
            raise CardError(0x1E)
        if full:
            header_len = self.HEADER.get(cmd, 0)
            header, ct = body[:header_len], body[header_len:]
            if ct:
                try:
                    plain = crypto.ev2_decrypt(
                        self.ses.enc, crypto.ev2_command_iv(self.ses.enc, self.ti, self.ctr), ct
                    )
                except crypto.CryptoError as exc:
                    raise CardError(0x1E) from exc
                return header + plain
        return body

    def _wrap(self, data: bytes, full: bool) -> bytes:
        assert self.ses is not None
        self.ctr += 1
        if full and data:
            data = crypto.ev2_encrypt(
                self.ses.enc, crypto.ev2_response_iv(self.ses.enc, self.ti, self.ctr), data
            )
        return data + crypto.ev2_response_mac(self.ses.mac, 0x00, self.ctr, self.ti, data)

    def _need_key(self, key_no: int) -> None:
        if self.auth_key != key_no:
            raise CardError(0xAE)

    # --- commands -----------------------------------------------------------------------

    def _native(self, cmd: int, data: bytes) -> bytes:
        if cmd == 0xAF and self._pending_auth is not None:
            return self._auth_part2(data)
        if cmd == 0x71:
            return self._auth_part1(data)
        if cmd == 0x5A:
            aid = int.from_bytes(data, "little")
            if aid != 0 and aid not in self.apps:
                raise CardError(0xA0)
            self._reset_auth()
            self.selected = aid
            return b""
        if cmd == 0x60:
            raise CardError(0x1C)
        if self.ses is None:
            raise CardError(0xAE)
        full_cmd = cmd in (0xC4, 0x5C) or (cmd == 0x8D and self._file_mode(data[:1]) == 3)
        plain = self._unwrap(cmd, data, full_cmd)
        handler = {
            0xCA: self._create_application,
            0xDA: self._delete_application,
            0x6A: self._application_ids,
            0xC4: self._change_key,
            0xCD: self._create_file,
            0x8D: self._write_data,
            0xAD: self._read_data,
            0x5C: self._set_configuration,
            0x51: self._card_uid,
            0x64: self._key_version,
        }.get(cmd)
        if handler is None:
            raise CardError(0x1C)
        return handler(plain)

    def _file_mode(self, file_no: bytes) -> int:
        files = self.app().files
        if not file_no or file_no[0] not in files:
            raise CardError(0xF0)
        return files[file_no[0]][0]

    def _auth_part1(self, data: bytes) -> bytes:
        self._reset_auth()
        key_no = data[0]
        keys = self.app().keys
        if key_no >= len(keys):
            raise CardError(0x40)
        rnd_b = self.rng(16)
        self._pending_auth = (key_no, keys[key_no], rnd_b)
        enc = crypto.aes_cbc_encrypt(keys[key_no], bytes(16), rnd_b)
        raise _Frame(enc)

    def _auth_part2(self, data: bytes) -> bytes:
        assert self._pending_auth is not None
        key_no, key, rnd_b = self._pending_auth
        self._pending_auth = None
        if len(data) != 32:
            raise CardError(0x7E)
        plain = crypto.aes_cbc_decrypt(key, bytes(16), data)
        rnd_a, rnd_b_rot = plain[:16], plain[16:]
        if rnd_b_rot != crypto.rotate_left(rnd_b):
            raise CardError(0xAE)
        self.auth_key = key_no
        self.ses = crypto.ev2_session_keys(key, rnd_a, rnd_b)
        self.ti = self.rng(4)
        self.ctr = 0
        return crypto.aes_cbc_encrypt(
            key, bytes(16), self.ti + crypto.rotate_left(rnd_a) + bytes(12)
        )

    def _create_application(self, data: bytes) -> bytes:
        if self.selected != 0:
            raise CardError(0x1C)
        self._need_key(0)
        aid = int.from_bytes(data[:3], "little")
        if aid in self.apps:
            raise CardError(0xDE)
        ks1, ks2 = data[3], data[4]
        n = ks2 & 0x0F
        self.apps[aid] = _App(ks1, ks2, [bytes(16)] * n, [0] * n)
        return self._wrap(b"", False)

    def _delete_application(self, data: bytes) -> bytes:
        self._need_key(0)
        aid = int.from_bytes(data[:3], "little")
        if aid not in self.apps:
            raise CardError(0xA0)
        del self.apps[aid]
        return self._wrap(b"", False)

    def _application_ids(self, data: bytes) -> bytes:
        return self._wrap(b"".join(a.to_bytes(3, "little") for a in self.apps), False)

    def _change_key(self, data: bytes) -> bytes:
        app = self.app()
        key_no = data[0]
        change_key = app.ks1 >> 4
        self._need_key(key_no if change_key == 0xE else 0)
        if key_no >= len(app.keys):
            raise CardError(0x40)
        payload = data[1:]
        if key_no == self.auth_key:
            if len(payload) != 17:
                raise CardError(0x7E)
            app.keys[key_no], app.versions[key_no] = payload[:16], payload[16]
            self._reset_auth()
            return b""
        if len(payload) != 21:
            raise CardError(0x7E)
        new = crypto.xor(payload[:16], app.keys[key_no])
        if crypto.desfire_crc32(new) != payload[17:21]:
            raise CardError(0x1E)
        app.keys[key_no], app.versions[key_no] = new, payload[16]
        return self._wrap(b"", False)

    def _create_file(self, data: bytes) -> bytes:
        if self.selected == 0:
            raise CardError(0x1C)
        self._need_key(0)
        file_no, comm, rights = data[0], data[1], int.from_bytes(data[2:4], "little")
        size = int.from_bytes(data[4:7], "little")
        app = self.app()
        if file_no in app.files:
            raise CardError(0xDE)
        app.files[file_no] = (comm, rights, size, bytearray(size))
        return self._wrap(b"", False)

    def _access(self, rights: int, *shifts: int) -> None:
        for shift in shifts:
            nibble = rights >> shift & 0xF
            if nibble == 0xE or nibble == self.auth_key:
                return
        raise CardError(0x9D)

    def _write_data(self, data: bytes) -> bytes:
        file_no = data[0]
        _, rights, size, content = self.app().files[file_no]
        offset, length = int.from_bytes(data[1:4], "little"), int.from_bytes(data[4:7], "little")
        payload = data[7:]
        self._access(rights, 8, 4)
        if len(payload) != length:
            raise CardError(0x7E)
        if offset + length > size:
            raise CardError(0xBE)
        content[offset : offset + length] = payload
        return self._wrap(b"", False)

    def _read_data(self, data: bytes) -> bytes:
        file_no = data[0]
        if file_no not in self.app().files:
            raise CardError(0xF0)
        comm, rights, size, content = self.app().files[file_no]
        offset, length = int.from_bytes(data[1:4], "little"), int.from_bytes(data[4:7], "little")
        self._access(rights, 12, 4)
        if offset + length > size:
            raise CardError(0xBE)
        return self._wrap(bytes(content[offset : offset + length]), comm == 3)

    def _set_configuration(self, data: bytes) -> bytes:
        if self.selected != 0:
            raise CardError(0x1C)
        self._need_key(0)
        if data[0] != 0x00 or len(data) != 2:
            raise CardError(0x9E)
        self.format_disabled = bool(data[1] & 0x01)
        self.random_uid = self.random_uid or bool(data[1] & 0x02)
        return self._wrap(b"", False)

    def _card_uid(self, data: bytes) -> bytes:
        return self._wrap(self.uid, True)

    def _key_version(self, data: bytes) -> bytes:
        return self._wrap(bytes([self.app().versions[data[0]]]), False)


class _Frame(CardError):
    """Answer ``data 91 AF`` (the first part of an authentication)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(0xAF)
        self.data = data


class CardDouble:
    """One dual-interface CPS4 card: ``contact`` and ``contactless`` are the two readers."""

    def __init__(
        self,
        *,
        card_number: str,
        kdd: bytes,
        uid: bytes,
        scp03_enc: bytes,
        scp03_mac: bytes,
        transport_key: bytes,
        key_source: Callable[[], rsa.RSAPrivateKey],
        product: Product = CPS4,
        rng: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        from cards.products import card_serial

        self.chip = ContactChip(
            product=product,
            serial=card_serial(card_number),
            kdd=kdd,
            enc=scp03_enc,
            mac=scp03_mac,
            key_source=key_source,
            rng=rng,
        )
        self.desfire = DesfireChip(uid=uid, picc_key=transport_key, rng=rng)

    def contact(self, raw: bytes) -> bytes:
        return self.chip(raw)

    def reset(self) -> None:
        """Power cycle: every transient state (channels, sessions, verified PINs) is lost."""
        chip = self.chip
        chip.selected.clear()
        chip.current_df.clear()
        chip.current_ef.clear()
        chip.scp.clear()
        chip.pending.clear()
        chip.verified.clear()
        chip.mse_key = None
        chip.challenge = None
        chip.admin_authenticated = False
        self.desfire._reset_auth()
        self.desfire.selected = 0

    def contactless(self, raw: bytes) -> bytes:
        return self.desfire(raw)
