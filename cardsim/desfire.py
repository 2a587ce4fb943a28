"""The contactless chip: MIFARE DESFire EV2 with AES keys, EV2 authentication and secure messaging.

Only what the CPS4 contactless application needs: PICC and applications, AES-128 keys with
versions, key settings, standard data files in plain/MAC/FULL mode with access rights. Frames are
ISO-wrapped (``90 cmd 00 00 Lc data 00`` -> ``data 91 status``).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cards import crypto
from cardsim import apdu, facts
from cardsim.apdu import CardError

ST_OK = 0x00
ST_NO_CHANGES = 0x0C
ST_OUT_OF_EEPROM = 0x0E
ST_ILLEGAL_COMMAND = 0x1C
ST_INTEGRITY = 0x1E
ST_NO_SUCH_KEY = 0x40
ST_LENGTH = 0x7E
ST_PERMISSION = 0x9D
ST_PARAMETER = 0x9E
ST_APP_NOT_FOUND = 0xA0
ST_AUTH = 0xAE
ST_MORE = 0xAF
ST_BOUNDARY = 0xBE
ST_ABORTED = 0xCA
ST_DUPLICATE = 0xDE
ST_FILE_NOT_FOUND = 0xF0

PLAIN, MAC, FULL = 0x00, 0x01, 0x03
PICC_AID = b"\x00\x00\x00"
ATR = facts.DESFIRE_ATR
CONFIG_FORMAT_DISABLED = 0x01
CONFIG_RANDOM_UID = 0x02
CAPACITY = 7936
FRAME = 240  # largest data part of one response frame before 91 AF chaining
VERSION_HW = bytes.fromhex("04010112001A05")
VERSION_SW = bytes.fromhex("04010112001A05")


class DesfireError(Exception):
    """A command ends with ``91 status``."""

    def __init__(self, status: int) -> None:
        super().__init__(f"DESFire status {status:02X}")
        self.status = status


@dataclass
class AesKey:
    """An AES-128 key and its version."""

    key: bytes = field(repr=False)
    version: int = 0


@dataclass
class StdFile:
    """A standard data file."""

    comm: int
    access: int
    size: int
    data: bytearray = field(repr=False)
    iso_fid: int = 0

    def used(self) -> int:
        """EEPROM taken, in 32-byte blocks."""
        return 32 + (self.size + 31) // 32 * 32


@dataclass
class Application:
    """A DESFire application."""

    ks1: int
    ks2: int
    keys: list[AesKey]
    files: dict[int, StdFile] = field(default_factory=dict)
    iso_fid: int = 0
    df_name: bytes = b""

    def used(self) -> int:
        """EEPROM taken by the application and its files."""
        return 64 + 32 * len(self.keys) + sum(f.used() for f in self.files.values())


@dataclass
class DesfireState:
    """What the DESFire chip keeps in EEPROM."""

    uid: bytes
    picc_key: AesKey
    picc_ks1: int = 0x0F
    config: int = 0
    apps: dict[bytes, Application] = field(default_factory=dict)
    batch: bytes = bytes.fromhex("BA7C400000")
    default_key: AesKey = field(default_factory=lambda: AesKey(bytes(16)))
    """The key (all key numbers) and version a new application gets: SetConfiguration option
    ``01`` sets it; factory default AES zeros, version 0."""

    def free_memory(self) -> int:
        """Bytes left for applications and files."""
        return CAPACITY - sum(a.used() for a in self.apps.values())

    def to_json(self) -> dict[str, Any]:
        """Plain data for the state file."""
        return {
            "uid": self.uid.hex(),
            "picc_key": [self.picc_key.key.hex(), self.picc_key.version],
            "picc_ks1": self.picc_ks1,
            "config": self.config,
            "default_key": [self.default_key.key.hex(), self.default_key.version],
            "batch": self.batch.hex(),
            "apps": [
                {
                    "aid": aid.hex(),
                    "ks1": app.ks1,
                    "ks2": app.ks2,
                    "iso_fid": app.iso_fid,
                    "df_name": app.df_name.hex(),
                    "keys": [[k.key.hex(), k.version] for k in app.keys],
                    "files": [
                        {
                            "no": no,
                            "comm": f.comm,
                            "access": f.access,
                            "size": f.size,
                            "iso_fid": f.iso_fid,
                            "data": bytes(f.data).hex(),
                        }
                        for no, f in sorted(app.files.items())
                    ],
                }
                for aid, app in self.apps.items()
            ],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DesfireState:
        """Inverse of ``to_json``."""
        apps: dict[bytes, Application] = {}
        for a in raw.get("apps", []):
            apps[bytes.fromhex(a["aid"])] = Application(
                ks1=int(a["ks1"]),
                ks2=int(a["ks2"]),
                keys=[AesKey(bytes.fromhex(k), int(v)) for k, v in a["keys"]],
                files={
                    int(f["no"]): StdFile(
                        comm=int(f["comm"]),
                        access=int(f["access"]),
                        size=int(f["size"]),
                        data=bytearray(bytes.fromhex(f["data"])),
                        iso_fid=int(f.get("iso_fid", 0)),
                    )
                    for f in a["files"]
                },
                iso_fid=int(a.get("iso_fid", 0)),
                df_name=bytes.fromhex(a.get("df_name", "")),
            )
        key, version = raw["picc_key"]
        default_key, default_version = raw.get("default_key", [bytes(16).hex(), 0])
        return cls(
            uid=bytes.fromhex(raw["uid"]),
            picc_key=AesKey(bytes.fromhex(key), int(version)),
            picc_ks1=int(raw.get("picc_ks1", 0x0F)),
            config=int(raw.get("config", 0)),
            apps=apps,
            batch=bytes.fromhex(raw.get("batch", "BA7C400000")),
            default_key=AesKey(bytes.fromhex(default_key), int(default_version)),
        )


@dataclass
class Session:
    """An EV2 authenticated session."""

    key_no: int
    ti: bytes
    enc: bytes = field(repr=False)
    mac: bytes = field(repr=False)
    ctr: int = 0


@dataclass
class _PendingAuth:
    key_no: int
    key: bytes = field(repr=False)
    rnd_b: bytes = field(repr=False)
    first: bool = True


class DesfireChip:
    """A DESFire EV2 PICC answering ISO-wrapped native commands."""

    def __init__(self, state: DesfireState, *, rng: Callable[[int], bytes]) -> None:
        self.state = state
        self.rng = rng
        self.dirty = False
        self.power_on()

    @property
    def atr(self) -> bytes:
        """ATR a PC/SC reader builds for a DESFire card."""
        return ATR

    def power_on(self) -> None:
        """Field reset: PICC level selected, no authentication."""
        self.selected = PICC_AID
        self.session: Session | None = None
        self.pending: _PendingAuth | list[bytes] | None = None
        self.random_uid = b"\x08" + self.rng(3)

    def transmit(self, raw: bytes) -> bytes:
        """Process one command APDU and return the response APDU."""
        try:
            cmd = apdu.parse(raw)
        except CardError as err:
            return apdu.sw_bytes(err.sw)
        if cmd.cla == 0xFF:
            if cmd.ins == 0xCA and cmd.p1 == 0 and cmd.p2 == 0:
                uid = self.random_uid if self.state.config & CONFIG_RANDOM_UID else self.state.uid
                return uid + b"\x90\x00"
            return apdu.sw_bytes(apdu.SW_INS_NOT_SUPPORTED)
        if cmd.cla != 0x90:
            return apdu.sw_bytes(apdu.SW_CLA_NOT_SUPPORTED)
        if cmd.p1 or cmd.p2:
            return apdu.sw_bytes(apdu.SW_WRONG_P1P2)
        pending, self.pending = self.pending, None
        try:
            if cmd.ins == ST_MORE:
                data, status = self._continue(pending, cmd.data)
            else:
                data, status = self._dispatch(cmd.ins, cmd.data)
        except DesfireError as err:
            self.session = None  # any error ends the authentication
            return bytes([0x91, err.status])
        if status == ST_OK and len(data) > FRAME:
            self.pending = [data[i : i + FRAME] for i in range(FRAME, len(data), FRAME)]
            return data[:FRAME] + bytes([0x91, ST_MORE])
        return data + bytes([0x91, status])

    def _continue(
        self, pending: _PendingAuth | list[bytes] | None, data: bytes
    ) -> tuple[bytes, int]:
        if isinstance(pending, _PendingAuth):
            return self._auth_part2(pending, data), ST_OK
        if isinstance(pending, list) and pending:
            if data:
                raise DesfireError(ST_LENGTH)
            if len(pending) > 1:
                self.pending = pending[1:]
                return pending[0], ST_MORE
            return pending[0], ST_OK
        raise DesfireError(ST_ILLEGAL_COMMAND)

    def _dispatch(self, ins: int, data: bytes) -> tuple[bytes, int]:
        handlers: dict[int, Callable[[int, bytes], bytes]] = {
            0x6E: self._get_free_memory,
            0x6A: self._get_application_ids,
            0xCA: self._create_application,
            0xDA: self._delete_application,
            0xFC: self._format_picc,
            0x45: self._get_key_settings,
            0x54: self._change_key_settings,
            0x64: self._get_key_version,
            0xC4: self._change_key,
            0x6F: self._get_file_ids,
            0xF5: self._get_file_settings,
            0xCD: self._create_std_data_file,
            0xDF: self._delete_file,
            0xBD: self._read_data,
            0xAD: self._read_data,
            0x3D: self._write_data,
            0x8D: self._write_data,
            0x51: self._get_card_uid,
            0x5C: self._set_configuration,
        }
        if ins in (0x71, 0x77):
            return self._auth_part1(ins, data), ST_MORE
        if ins == 0x5A:
            return self._select_application(data), ST_OK
        if ins == 0x60:
            return self._get_version(data)
        handler = handlers.get(ins)
        if handler is None:
            raise DesfireError(ST_ILLEGAL_COMMAND)
        return handler(ins, data), ST_OK

    # -- secure messaging ----------------------------------------------------------------------

    def _rx(self, ins: int, data: bytes, mode: int, header_len: int) -> tuple[bytes, bytes]:
        """Check the command MAC (and decrypt) while authenticated; return (header, data)."""
        s = self.session
        if s is None or mode == PLAIN:
            if len(data) < header_len:
                raise DesfireError(ST_LENGTH)
            return data[:header_len], data[header_len:]
        if len(data) < header_len + 8:
            raise DesfireError(ST_LENGTH)
        body, mac = data[:-8], data[-8:]
        if not hmac.compare_digest(crypto.ev2_command_mac(s.mac, ins, s.ctr, s.ti, body), mac):
            raise DesfireError(ST_INTEGRITY)
        header, payload = body[:header_len], body[header_len:]
        if mode == FULL and payload:
            if len(payload) % 16:
                raise DesfireError(ST_LENGTH)
            try:
                payload = crypto.ev2_decrypt(
                    s.enc, crypto.ev2_command_iv(s.enc, s.ti, s.ctr), payload
                )
            except ValueError:
                raise DesfireError(ST_INTEGRITY) from None
        return header, payload

    def _tx(self, data: bytes, mode: int) -> bytes:
        """Count the exchange and protect the response as the mode asks."""
        s = self.session
        if s is None:
            return data
        s.ctr = (s.ctr + 1) & 0xFFFF
        if mode == FULL and data:
            data = crypto.ev2_encrypt(s.enc, crypto.ev2_response_iv(s.enc, s.ti, s.ctr), data)
        if mode in (MAC, FULL):
            data += crypto.ev2_response_mac(s.mac, ST_OK, s.ctr, s.ti, data)
        return data

    def _mgmt(self, ins: int, data: bytes, header_len: int) -> bytes:
        """Management commands travel in MAC mode while authenticated."""
        header, rest = self._rx(ins, data, MAC, header_len)
        if rest:
            raise DesfireError(ST_LENGTH)
        return header

    def _require(self, key_no: int) -> None:
        """Free (E), never (F), or authenticated with this key."""
        if key_no == 0xE:
            return
        if key_no == 0xF:
            raise DesfireError(ST_PERMISSION)
        if self.session is None:
            raise DesfireError(ST_AUTH)
        if self.session.key_no != key_no:
            raise DesfireError(ST_PERMISSION)

    def _app(self) -> Application:
        app = self.state.apps.get(self.selected)
        if app is None:
            raise DesfireError(ST_PERMISSION)
        return app

    def _key(self, key_no: int) -> AesKey:
        if self.selected == PICC_AID:
            if key_no & 0x3F:
                raise DesfireError(ST_NO_SUCH_KEY)
            return self.state.picc_key
        app = self._app()
        if key_no >= len(app.keys):
            raise DesfireError(ST_NO_SUCH_KEY)
        return app.keys[key_no]

    # -- authentication ------------------------------------------------------------------------

    def _auth_part1(self, ins: int, data: bytes) -> bytes:
        first = ins == 0x71
        if not data or (first and (len(data) < 2 or len(data) != 2 + data[1])):
            raise DesfireError(ST_LENGTH)
        if not first and self.session is None:
            raise DesfireError(ST_AUTH)
        key_no = data[0]
        key = self._key(key_no)
        if first:
            self.session = None
        rnd_b = self.rng(16)
        self.pending = _PendingAuth(key_no & 0x3F, key.key, rnd_b, first)
        return crypto.aes_cbc_encrypt(key.key, bytes(16), rnd_b)

    def _auth_part2(self, pending: _PendingAuth, data: bytes) -> bytes:
        if len(data) != 32:
            raise DesfireError(ST_LENGTH)
        plain = crypto.aes_cbc_decrypt(pending.key, bytes(16), data)
        rnd_a, rnd_b_rot = plain[:16], plain[16:]
        if not hmac.compare_digest(rnd_b_rot, crypto.rotate_left(pending.rnd_b)):
            raise DesfireError(ST_AUTH)
        keys = crypto.ev2_session_keys(pending.key, rnd_a, pending.rnd_b)
        if pending.first:
            ti = self.rng(4)
            self.session = Session(pending.key_no, ti, keys.enc, keys.mac, 0)
            answer = ti + crypto.rotate_left(rnd_a) + bytes(6) + bytes(6)
        else:
            assert self.session is not None
            self.session = Session(
                pending.key_no, self.session.ti, keys.enc, keys.mac, self.session.ctr
            )
            answer = crypto.rotate_left(rnd_a)
        return crypto.aes_cbc_encrypt(pending.key, bytes(16), answer)

    # -- PICC level ----------------------------------------------------------------------------

    def _select_application(self, data: bytes) -> bytes:
        if len(data) not in (3, 6):
            raise DesfireError(ST_LENGTH)
        aid = data[:3]
        self.session = None
        if aid != PICC_AID and aid not in self.state.apps:
            self.selected = PICC_AID
            raise DesfireError(ST_APP_NOT_FOUND)
        self.selected = aid
        return b""

    def _get_version(self, data: bytes) -> tuple[bytes, int]:
        self._mgmt(0x60, data, 0)
        third = self.state.uid + self.state.batch + bytes([0x2C, 0x25])
        full = self._tx(VERSION_HW + VERSION_SW + third, MAC)
        self.pending = [VERSION_SW, full[14:]]
        return full[:7], ST_MORE

    def _get_free_memory(self, ins: int, data: bytes) -> bytes:
        self._mgmt(ins, data, 0)
        return self._tx(self.state.free_memory().to_bytes(3, "little"), MAC)

    def _get_application_ids(self, ins: int, data: bytes) -> bytes:
        self._mgmt(ins, data, 0)
        if self.selected != PICC_AID:
            raise DesfireError(ST_PERMISSION)
        if not self.state.picc_ks1 & 0x02:
            self._require(0)
        return self._tx(b"".join(self.state.apps), MAC)

    def _create_application(self, ins: int, data: bytes) -> bytes:
        body = self._mgmt(ins, data, len(data) - (8 if self.session else 0))
        if self.selected != PICC_AID:
            raise DesfireError(ST_PERMISSION)
        if not self.state.picc_ks1 & 0x04:
            self._require(0)
        if len(body) < 5:
            raise DesfireError(ST_LENGTH)
        aid, ks1, ks2 = body[:3], body[3], body[4]
        iso = bool(ks2 & 0x20)
        rest = body[5:]
        iso_fid, df_name = 0, b""
        if iso:
            if len(rest) < 2 or len(rest) > 18:
                raise DesfireError(ST_LENGTH)
            iso_fid, df_name = int.from_bytes(rest[:2], "little"), rest[2:]
        elif rest:
            raise DesfireError(ST_LENGTH)
        n_keys = ks2 & 0x0F
        if aid == PICC_AID or ks2 & 0xC0 != 0x80 or not 1 <= n_keys <= 14:
            raise DesfireError(ST_PARAMETER)
        if aid in self.state.apps:
            raise DesfireError(ST_DUPLICATE)
        default = self.state.default_key
        app = Application(
            ks1,
            ks2,
            [AesKey(default.key, default.version) for _ in range(n_keys)],
            {},
            iso_fid,
            df_name,
        )
        if app.used() > self.state.free_memory():
            raise DesfireError(ST_OUT_OF_EEPROM)
        self.state.apps[aid] = app
        self.dirty = True
        return self._tx(b"", MAC)

    def _delete_application(self, ins: int, data: bytes) -> bytes:
        aid = self._mgmt(ins, data, 3)
        if self.selected != PICC_AID:
            raise DesfireError(ST_PERMISSION)
        if aid not in self.state.apps:
            raise DesfireError(ST_APP_NOT_FOUND)
        self._require(0)
        del self.state.apps[aid]
        self.dirty = True
        return self._tx(b"", MAC)

    def _format_picc(self, ins: int, data: bytes) -> bytes:
        self._mgmt(ins, data, 0)
        if self.selected != PICC_AID:
            raise DesfireError(ST_PERMISSION)
        self._require(0)
        if self.state.config & CONFIG_FORMAT_DISABLED:
            raise DesfireError(ST_PERMISSION)
        self.state.apps.clear()
        self.dirty = True
        return self._tx(b"", MAC)

    def _get_card_uid(self, ins: int, data: bytes) -> bytes:
        self._mgmt(ins, data, 0)
        if self.session is None:
            raise DesfireError(ST_AUTH)
        return self._tx(self.state.uid, FULL)

    def _set_configuration(self, ins: int, data: bytes) -> bytes:
        """Option ``00``: PICC configuration byte (random UID, FormatPICC disabled; one way).
        Option ``01``: the default key of new applications, as libfreefare's
        ``mifare_desfire_set_default_key`` sends it: key data padded with zeros to 24 bytes ‖
        key version (25 bytes, FULL mode, PICC master key session); AES uses the first 16."""
        header, payload = self._rx(ins, data, FULL, 1)
        if self.selected != PICC_AID:
            raise DesfireError(ST_PERMISSION)
        self._require(0)
        if header == b"\x00":
            if len(payload) != 1 or payload[0] & ~(CONFIG_FORMAT_DISABLED | CONFIG_RANDOM_UID):
                raise DesfireError(ST_PARAMETER)
            self.state.config |= payload[0]  # both options are irreversible
        elif header == b"\x01":
            if len(payload) != 25:
                raise DesfireError(ST_LENGTH)
            self.state.default_key = AesKey(payload[:16], payload[24])
        else:
            raise DesfireError(ST_PARAMETER)
        self.dirty = True
        return self._tx(b"", MAC)

    # -- keys ----------------------------------------------------------------------------------

    def _settings(self) -> tuple[int, int]:
        if self.selected == PICC_AID:
            return self.state.picc_ks1, 0x81
        app = self._app()
        return app.ks1, app.ks2

    def _get_key_settings(self, ins: int, data: bytes) -> bytes:
        self._mgmt(ins, data, 0)
        ks1, ks2 = self._settings()
        if not ks1 & 0x02:
            self._require(0)
        return self._tx(bytes([ks1, ks2]), MAC)

    def _change_key_settings(self, ins: int, data: bytes) -> bytes:
        _, payload = self._rx(ins, data, FULL, 0)
        ks1, _ = self._settings()
        self._require(0)
        if not ks1 & 0x08:
            raise DesfireError(ST_PERMISSION)
        if len(payload) != 1:
            raise DesfireError(ST_LENGTH)
        if self.selected == PICC_AID:
            self.state.picc_ks1 = payload[0]
        else:
            self._app().ks1 = payload[0]
        self.dirty = True
        return self._tx(b"", MAC)

    def _get_key_version(self, ins: int, data: bytes) -> bytes:
        header = self._mgmt(ins, data, 1)
        return self._tx(bytes([self._key(header[0]).version]), MAC)

    def _change_key(self, ins: int, data: bytes) -> bytes:
        header, payload = self._rx(ins, data, FULL, 1)
        if self.session is None:
            raise DesfireError(ST_AUTH)
        key_no = header[0] & (0x3F if self.selected == PICC_AID else 0xFF)
        target = self._key(header[0])
        ks1, _ = self._settings()
        change_key = ks1 >> 4
        if key_no == 0 or self.selected == PICC_AID:
            self._require(0)
            if not ks1 & 0x01:
                raise DesfireError(ST_PERMISSION)
        elif change_key == 0xE:
            self._require(key_no)
        else:
            self._require(change_key)
        if key_no == self.session.key_no:
            if len(payload) != 17:
                raise DesfireError(ST_LENGTH)
            target.key, target.version = payload[:16], payload[16]
            self.session = None  # changing the authenticated key ends the session
            self.dirty = True
            return b""
        if len(payload) != 21:
            raise DesfireError(ST_LENGTH)
        new = crypto.xor(payload[:16], target.key)
        if not hmac.compare_digest(crypto.desfire_crc32(new), payload[17:21]):
            raise DesfireError(ST_INTEGRITY)
        target.key, target.version = new, payload[16]
        self.dirty = True
        return self._tx(b"", MAC)

    # -- files ---------------------------------------------------------------------------------

    def _file(self, file_no: int) -> StdFile:
        found = self._app().files.get(file_no)
        if found is None:
            raise DesfireError(ST_FILE_NOT_FOUND)
        return found

    def _get_file_ids(self, ins: int, data: bytes) -> bytes:
        self._mgmt(ins, data, 0)
        app = self._app()
        if not app.ks1 & 0x02:
            self._require(0)
        return self._tx(bytes(sorted(app.files)), MAC)

    def _get_file_settings(self, ins: int, data: bytes) -> bytes:
        header = self._mgmt(ins, data, 1)
        app = self._app()
        if not app.ks1 & 0x02:
            self._require(0)
        f = self._file(header[0])
        out = bytes([0x00, f.comm]) + f.access.to_bytes(2, "little") + f.size.to_bytes(3, "little")
        return self._tx(out, MAC)

    def _create_std_data_file(self, ins: int, data: bytes) -> bytes:
        app = self._app()
        iso = bool(app.ks2 & 0x20)
        length = 9 if iso else 7
        body = self._mgmt(ins, data, length)
        if not app.ks1 & 0x04:
            self._require(0)
        file_no = body[0]
        iso_fid = int.from_bytes(body[1:3], "little") if iso else 0
        comm, access, size = body[-6], int.from_bytes(body[-5:-3], "little"), body[-3:]
        size_value = int.from_bytes(size, "little")
        if file_no > 31 or comm not in (PLAIN, MAC, FULL) or size_value == 0:
            raise DesfireError(ST_PARAMETER)
        if file_no in app.files:
            raise DesfireError(ST_DUPLICATE)
        new = StdFile(comm, access, size_value, bytearray(size_value), iso_fid)
        if new.used() > self.state.free_memory():
            raise DesfireError(ST_OUT_OF_EEPROM)
        app.files[file_no] = new
        self.dirty = True
        return self._tx(b"", MAC)

    def _delete_file(self, ins: int, data: bytes) -> bytes:
        header = self._mgmt(ins, data, 1)
        app = self._app()
        self._file(header[0])
        if not app.ks1 & 0x04:
            self._require(0)
        del app.files[header[0]]
        self.dirty = True
        return self._tx(b"", MAC)

    def _access(self, f: StdFile, nibbles: tuple[int, ...]) -> int:
        """Communication mode of an access granted by one of these key nibbles."""
        keys = [(f.access >> shift) & 0xF for shift in nibbles]
        if 0xE in keys:
            return PLAIN
        if self.session is None:
            if all(k == 0xF for k in keys):
                raise DesfireError(ST_PERMISSION)
            raise DesfireError(ST_AUTH)
        if self.session.key_no not in keys:
            raise DesfireError(ST_PERMISSION)
        return f.comm

    def _read_data(self, ins: int, data: bytes) -> bytes:
        if len(data) < 7:
            raise DesfireError(ST_LENGTH)
        f = self._file(data[0])
        mode = self._access(f, (12, 4))
        header, rest = self._rx(ins, data, MAC if mode != PLAIN else PLAIN, 7)
        if rest:
            raise DesfireError(ST_LENGTH)
        offset = int.from_bytes(header[1:4], "little")
        length = int.from_bytes(header[4:7], "little") or max(f.size - offset, 0)
        if offset + length > f.size or offset >= f.size:
            raise DesfireError(ST_BOUNDARY)
        return self._tx(bytes(f.data[offset : offset + length]), mode)

    def _write_data(self, ins: int, data: bytes) -> bytes:
        if len(data) < 7:
            raise DesfireError(ST_LENGTH)
        f = self._file(data[0])
        mode = self._access(f, (8, 4))
        header, payload = self._rx(ins, data, mode, 7)
        offset = int.from_bytes(header[1:4], "little")
        length = int.from_bytes(header[4:7], "little")
        if length != len(payload) or length == 0:
            raise DesfireError(ST_LENGTH)
        if offset + length > f.size:
            raise DesfireError(ST_BOUNDARY)
        f.data[offset : offset + length] = payload
        self.dirty = True
        return self._tx(b"", MAC if mode != PLAIN else PLAIN)
