"""MIFARE DESFire EV2, host side, sans I/O: ISO-wrapped native commands and EV2 secure messaging.

``Ev2Authentication`` runs AuthenticateEV2First/NonFirst in two exchanges and returns an
``Ev2Session``. The session ``prepare()``s commands (MAC or FULL mode) and ``finish()``es their
responses: preparing needs no response, so a batch can be prepared ahead; each
``DesfireCommand`` remembers the command counter its response is checked against. A response
whose MAC fails raises ``MacError`` before any data is decrypted or returned.

Conventions fixed here (the card side follows them): one ISO frame carries up to 255 bytes of
command data, longer commands go in ``90 AF`` continuation frames answered ``91 AF``; responses are
concatenated over ``91 AF`` frames by ``DesfireCard`` (programs keep responses to one frame).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from cards import crypto
from cards.apdu import CommandApdu, ResponseApdu
from cards.errors import (
    AuthenticationError,
    CryptoError,
    DesfireStatusError,
    MacError,
    MalformedResponse,
    ProtocolError,
)
from cards.transport import Transport

__all__ = [
    "COMMAND_NAMES",
    "CommMode",
    "DesfireCard",
    "DesfireCommand",
    "Ev2Authentication",
    "Ev2Session",
    "FileSettings",
    "access_rights",
    "aid_bytes",
    "create_application",
    "create_std_data_file",
    "native",
    "parse_native",
]

ADDITIONAL_FRAME = 0xAF
OK = 0x00
MAX_FRAME = 255

COMMAND_NAMES: dict[int, str] = {
    0x60: "GetVersion",
    0x5A: "SelectApplication",
    0x6A: "GetApplicationIDs",
    0xCA: "CreateApplication",
    0xDA: "DeleteApplication",
    0xFC: "FormatPICC",
    0x45: "GetKeySettings",
    0x54: "ChangeKeySettings",
    0x64: "GetKeyVersion",
    0xC4: "ChangeKey",
    0x6F: "GetFileIDs",
    0xF5: "GetFileSettings",
    0xCD: "CreateStdDataFile",
    0xDF: "DeleteFile",
    0x3D: "WriteData",
    0x8D: "WriteData",
    0xBD: "ReadData",
    0xAD: "ReadData",
    0x51: "GetCardUID",
    0x5C: "SetConfiguration",
    0x6E: "GetFreeMemory",
    0x71: "AuthenticateEV2First",
    0x77: "AuthenticateEV2NonFirst",
    0xAA: "AuthenticateAES",
    0xAF: "AdditionalFrame",
}


def _name(cmd: int) -> str:
    return COMMAND_NAMES.get(cmd, f"DESFire command {cmd:02X}")


class CommMode(Enum):
    """EV2 communication mode of a command or response."""

    PLAIN = "plain"
    MAC = "mac"
    FULL = "full"


def native(cmd: int, data: bytes = b"") -> CommandApdu:
    """ISO 7816 wrapping of a native command: ``90 cmd 00 00 [Lc data] 00``."""
    return CommandApdu(0x90, cmd, 0x00, 0x00, data, 256)


def native_frames(cmd: int, data: bytes = b"") -> list[CommandApdu]:
    """The command split in frames: the first carries ``cmd``, the rest ``AF`` continuations."""
    if len(data) <= MAX_FRAME:
        return [native(cmd, data)]
    chunks = [data[i : i + MAX_FRAME] for i in range(0, len(data), MAX_FRAME)]
    return [native(cmd, chunks[0])] + [native(ADDITIONAL_FRAME, c) for c in chunks[1:]]


def parse_native(response: ResponseApdu, command: str, expected: int = OK) -> bytes:
    """Check an ISO-wrapped native answer ``data 91 status``; return data or raise."""
    if response.sw1 != 0x91:
        raise MalformedResponse(command, f"SW {response.sw:04X} is not a DESFire status (91 xx)")
    if response.sw2 != expected:
        raise DesfireStatusError(command, response.sw2)
    return response.data


def aid_bytes(aid: int) -> bytes:
    """A 3-byte DESFire application identifier, LSB first."""
    if not 0 <= aid <= 0xFFFFFF:
        raise ValueError(f"AID {aid:X} is not 3 bytes")
    return aid.to_bytes(3, "little")


def access_rights(read: int, write: int, read_write: int, change: int) -> bytes:
    """Access rights ``R<<12 | W<<8 | RW<<4 | Change``, 2 bytes LE (``E`` free, ``F`` never)."""
    for nibble in (read, write, read_write, change):
        if not 0 <= nibble <= 0xF:
            raise ValueError(f"access right {nibble} is not a nibble")
    return (read << 12 | write << 8 | read_write << 4 | change).to_bytes(2, "little")


def create_application(
    aid: int, ks1: int, ks2: int, iso_fid: int | None = None, df_name: bytes | None = None
) -> bytes:
    """CreateApplication header: ``AID(3) KS1 KS2 [ISO FID(2 LE)] [DF name]``."""
    out = aid_bytes(aid) + bytes([ks1, ks2])
    if iso_fid is not None:
        out += iso_fid.to_bytes(2, "little")
    if df_name is not None:
        if iso_fid is None:
            raise ValueError("a DF name needs an ISO file identifier")
        out += df_name
    return out


@dataclass(frozen=True, slots=True)
class FileSettings:
    """A standard data file to create."""

    file_no: int
    size: int
    comm_mode: int
    read: int
    write: int
    read_write: int
    change: int
    iso_fid: int | None = None


def create_std_data_file(settings: FileSettings) -> bytes:
    """CreateStdDataFile header: ``FileNo [ISO FID] CommSett AccessRights(2 LE) Size(3 LE)``."""
    out = bytes([settings.file_no])
    if settings.iso_fid is not None:
        out += settings.iso_fid.to_bytes(2, "little")
    out += bytes([settings.comm_mode])
    out += access_rights(settings.read, settings.write, settings.read_write, settings.change)
    out += settings.size.to_bytes(3, "little")
    return out


# --- authentication ----------------------------------------------------------------------------


class Ev2Authentication:
    """AuthenticateEV2First (``first=True``) or NonFirst, in two exchanges."""

    def __init__(
        self,
        key_no: int,
        key: bytes,
        *,
        first: bool = True,
        previous: Ev2Session | None = None,
        rng: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if len(key) != 16:
            raise ValueError("DESFire EV2 keys are AES-128 (16 bytes)")
        if not first and previous is None:
            raise ValueError("AuthenticateEV2NonFirst continues an existing session")
        self.key_no = key_no
        self._key = key
        self.first = first
        self._previous = previous
        self._rng = rng
        self._rnd_a = b""
        self._rnd_b = b""
        self.command_name = "AuthenticateEV2First" if first else "AuthenticateEV2NonFirst"

    def __repr__(self) -> str:
        return f"Ev2Authentication(key_no={self.key_no}, first={self.first})"

    def start(self) -> CommandApdu:
        """Part 1: ``90 71 00 00 02 KeyNo 00 00`` (NonFirst: ``90 77 00 00 01 KeyNo 00``)."""
        if self.first:
            return native(0x71, bytes([self.key_no, 0x00]))
        return native(0x77, bytes([self.key_no]))

    def answer(self, response: ResponseApdu) -> CommandApdu:
        """Part 2: decrypt RndB and send ``90 AF 00 00 20 E(K, RndA ‖ RndB<<<1) 00``."""
        enc_rnd_b = parse_native(response, self.command_name, ADDITIONAL_FRAME)
        if len(enc_rnd_b) != 16:
            raise MalformedResponse(self.command_name, f"E(RndB) of {len(enc_rnd_b)} bytes")
        self._rnd_b = crypto.aes_cbc_decrypt(self._key, bytes(16), enc_rnd_b)
        self._rnd_a = self._rng(16)
        if len(self._rnd_a) != 16:
            raise ProtocolError(self.command_name, "the RNG must return 16 bytes")
        token = crypto.aes_cbc_encrypt(
            self._key, bytes(16), self._rnd_a + crypto.rotate_left(self._rnd_b)
        )
        return native(ADDITIONAL_FRAME, token)

    def finish(self, response: ResponseApdu) -> Ev2Session:
        """Check RndA' and open the session (TI from the card; CmdCtr 0 after First)."""
        if not self._rnd_a:
            raise ProtocolError(self.command_name, "part 2 was not sent")
        data = parse_native(response, self.command_name)
        want = 32 if self.first else 16
        if len(data) != want:
            raise MalformedResponse(self.command_name, f"{len(data)} bytes instead of {want}")
        plain = crypto.aes_cbc_decrypt(self._key, bytes(16), data)
        rnd_a_rot = plain[4:20] if self.first else plain[0:16]
        if not crypto.constant_time_equal(rnd_a_rot, crypto.rotate_left(self._rnd_a)):
            raise AuthenticationError(self.command_name, "card's RndA' does not match (wrong key?)")
        keys = crypto.ev2_session_keys(self._key, self._rnd_a, self._rnd_b)
        if self.first:
            return Ev2Session(keys, ti=plain[0:4], key_no=self.key_no, cmd_ctr=0)
        assert self._previous is not None
        return Ev2Session(
            keys, ti=self._previous.ti, key_no=self.key_no, cmd_ctr=self._previous.cmd_ctr
        )


# --- secure messaging --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DesfireCommand:
    """A prepared command: its frames and what its response is checked against."""

    cmd: int
    frames: tuple[CommandApdu, ...]
    cmd_ctr: int
    response_mode: CommMode
    ends_session: bool = False
    name: str = field(default="")

    @property
    def command_name(self) -> str:
        """The command's name for errors."""
        return self.name or _name(self.cmd)


class Ev2Session:
    """An authenticated EV2 session: session keys, TI and the command counter."""

    def __init__(
        self, keys: crypto.Ev2SessionKeys, *, ti: bytes, key_no: int, cmd_ctr: int = 0
    ) -> None:
        if len(ti) != 4:
            raise ValueError("TI is 4 bytes")
        self._keys = keys
        # Prepared once: a session MACs (and often enciphers) every command and response.
        self._enc = crypto.AesKey(keys.enc)
        self._mac = crypto.AesKey(keys.mac)
        self.ti = ti
        self.key_no = key_no
        self.cmd_ctr = cmd_ctr
        self.active = True

    def __repr__(self) -> str:
        return f"Ev2Session(key_no={self.key_no}, ti={self.ti.hex()}, cmd_ctr={self.cmd_ctr})"

    @property
    def keys(self) -> crypto.Ev2SessionKeys:
        """The session keys (never logged: this object's repr omits them)."""
        return self._keys

    def prepare(
        self,
        cmd: int,
        header: bytes = b"",
        data: bytes = b"",
        *,
        mode: CommMode = CommMode.MAC,
        response_mode: CommMode | None = None,
        ends_session: bool = False,
    ) -> DesfireCommand:
        """Build a command in ``mode`` and reserve its command counter value."""
        name = _name(cmd)
        if not self.active:
            raise ProtocolError(name, "the EV2 session has ended")
        ctr = self.cmd_ctr
        if mode is CommMode.FULL and data:
            data = crypto.ev2_encrypt(
                self._enc, crypto.ev2_command_iv(self._enc, self.ti, ctr), data
            )
        body = header + data
        if mode is not CommMode.PLAIN:
            body += crypto.ev2_command_mac(self._mac, cmd, ctr, self.ti, header + data)
        self.cmd_ctr = (ctr + 1) & 0xFFFF
        if ends_session:
            self.active = False
        return DesfireCommand(
            cmd,
            tuple(native_frames(cmd, body)),
            ctr,
            response_mode or (CommMode.PLAIN if mode is CommMode.PLAIN else CommMode.MAC),
            ends_session,
            name,
        )

    def finish(self, command: DesfireCommand, response: ResponseApdu, name: str = "") -> bytes:
        """Verify the response MAC, then decrypt FULL data; MacError releases nothing."""
        name = name or command.command_name
        try:
            data = parse_native(response, name)
        except DesfireStatusError:
            self.active = False  # any error status ends the authentication
            raise
        if command.ends_session or command.response_mode is CommMode.PLAIN:
            return data
        if len(data) < 8:
            self.active = False
            raise MacError(name, "response too short to carry a MAC")
        body, mac = data[:-8], data[-8:]
        next_ctr = (command.cmd_ctr + 1) & 0xFFFF
        expected = crypto.ev2_response_mac(self._mac, OK, next_ctr, self.ti, body)
        if not crypto.constant_time_equal(expected, mac):
            self.active = False
            raise MacError(name)
        if command.response_mode is CommMode.FULL:
            if not body:
                return b""
            iv = crypto.ev2_response_iv(self._enc, self.ti, next_ctr)
            try:
                return crypto.ev2_decrypt(self._enc, iv, body)
            except CryptoError as exc:
                self.active = False
                raise MalformedResponse(name, f"FULL-mode data does not decrypt: {exc}") from exc
        return body

    # --- command builders --------------------------------------------------------------------

    def change_key(
        self, key_no: int, new_key: bytes, key_version: int, old_key: bytes | None = None
    ) -> DesfireCommand:
        """ChangeKey (FULL): another key needs ``old_key``; the auth key itself ends the session."""
        same = key_no == self.key_no
        if not same and old_key is None:
            raise ValueError("changing another key needs its current value")
        plain = crypto.ev2_change_key_cryptogram(new_key, key_version, None if same else old_key)
        return self.prepare(0xC4, bytes([key_no]), plain, mode=CommMode.FULL, ends_session=same)

    def write_data(
        self, file_no: int, offset: int, data: bytes, mode: CommMode = CommMode.FULL
    ) -> DesfireCommand:
        """WriteData (``8D``) of a standard file in the file's communication mode."""
        header = bytes([file_no]) + offset.to_bytes(3, "little") + len(data).to_bytes(3, "little")
        return self.prepare(0x8D, header, data, mode=mode)

    def read_data(
        self, file_no: int, offset: int, length: int, mode: CommMode = CommMode.FULL
    ) -> DesfireCommand:
        """ReadData (``AD``); the response comes in ``mode``."""
        header = bytes([file_no]) + offset.to_bytes(3, "little") + length.to_bytes(3, "little")
        cmd_mode = CommMode.PLAIN if mode is CommMode.PLAIN else CommMode.MAC
        return self.prepare(0xAD, header, mode=cmd_mode, response_mode=mode)

    def get_card_uid(self) -> DesfireCommand:
        """GetCardUID (``51``): the real UID, FULL-mode response."""
        return self.prepare(0x51, response_mode=CommMode.FULL)

    def set_configuration(self, option: int, data: bytes) -> DesfireCommand:
        """SetConfiguration (``5C``), FULL mode; option ``00`` = PICC configuration byte."""
        return self.prepare(0x5C, bytes([option]), data, mode=CommMode.FULL)

    def create_application(self, header: bytes) -> DesfireCommand:
        """CreateApplication (``CA``) in MAC mode (header from ``create_application``)."""
        return self.prepare(0xCA, header)

    def create_std_data_file(self, settings: FileSettings) -> DesfireCommand:
        """CreateStdDataFile (``CD``) in MAC mode."""
        return self.prepare(0xCD, create_std_data_file(settings))

    def get_key_version(self, key_no: int) -> DesfireCommand:
        """GetKeyVersion (``64``) in MAC mode."""
        return self.prepare(0x64, bytes([key_no]))

    def format_picc(self) -> DesfireCommand:
        """FormatPICC (``FC``) in MAC mode."""
        return self.prepare(0xFC)


# --- an interactive client ---------------------------------------------------------------------


class DesfireCard:
    """DESFire commands over a transport (interactive use, tests, benchmarks)."""

    def __init__(
        self, transport: Transport, rng: Callable[[int], bytes] = secrets.token_bytes
    ) -> None:
        self.transport = transport
        self.session: Ev2Session | None = None
        self._rng = rng

    def _exchange(self, apdu: CommandApdu, command: str) -> ResponseApdu:
        return ResponseApdu.decode(self.transport.transmit(apdu.encode()), command)

    def _plain(self, cmd: int, data: bytes = b"") -> bytes:
        """A plain command with ``91 AF`` continuation of its response."""
        name = _name(cmd)
        response = self._exchange(native(cmd, data), name)
        out = b""
        while response.sw == 0x91AF:
            out += response.data
            response = self._exchange(native(ADDITIONAL_FRAME), name)
        out += parse_native(response, name)
        if self.session is not None:
            self.session.cmd_ctr = (self.session.cmd_ctr + 1) & 0xFFFF
        return out

    def run(self, command: DesfireCommand) -> bytes:
        """Send a prepared command (all its frames) and finish its response."""
        if self.session is None:
            raise ProtocolError(command.command_name, "not authenticated")
        for frame in command.frames[:-1]:
            parse_native(
                self._exchange(frame, command.command_name), command.command_name, ADDITIONAL_FRAME
            )
        response = self._exchange(command.frames[-1], command.command_name)
        data = b""
        while response.sw == 0x91AF:
            data += response.data
            response = self._exchange(native(ADDITIONAL_FRAME), command.command_name)
        return self.session.finish(command, ResponseApdu(data + response.data, response.sw))

    def get_version(self) -> bytes:
        """GetVersion: the three frames concatenated (28 bytes on EV2)."""
        return self._plain(0x60)

    def select_application(self, aid: int) -> None:
        """SelectApplication (ends any authentication)."""
        self.session = None
        self._plain(0x5A, aid_bytes(aid))

    def authenticate(self, key_no: int, key: bytes, *, first: bool = True) -> Ev2Session:
        """AuthenticateEV2First (or NonFirst on the current session)."""
        auth = Ev2Authentication(key_no, key, first=first, previous=self.session, rng=self._rng)
        part2 = auth.answer(self._exchange(auth.start(), auth.command_name))
        self.session = auth.finish(self._exchange(part2, auth.command_name))
        return self.session

    def _session(self, command: str) -> Ev2Session:
        if self.session is None or not self.session.active:
            raise ProtocolError(command, "not authenticated")
        return self.session

    def change_key(
        self, key_no: int, new_key: bytes, version: int, old_key: bytes | None = None
    ) -> None:
        """ChangeKey; changing the authenticated key ends the session."""
        session = self._session("ChangeKey")
        same = key_no == session.key_no
        self.run(session.change_key(key_no, new_key, version, old_key))
        if same:
            self.session = None

    def write_data(
        self, file_no: int, offset: int, data: bytes, mode: CommMode = CommMode.FULL
    ) -> None:
        """WriteData in the given mode."""
        self.run(self._session("WriteData").write_data(file_no, offset, data, mode))

    def read_data(
        self, file_no: int, offset: int, length: int, mode: CommMode = CommMode.FULL
    ) -> bytes:
        """ReadData in the given mode."""
        return self.run(self._session("ReadData").read_data(file_no, offset, length, mode))

    def get_card_uid(self) -> bytes:
        """GetCardUID (real UID, even with random UID on)."""
        return self.run(self._session("GetCardUID").get_card_uid())
