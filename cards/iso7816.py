"""ISO 7816-4/-8/-9 host commands: APDU builders, response parsers, and a small card client.

Builders are pure and return ``CommandApdu`` on the basic channel (move them with
``.on_channel(n)``). Parsers take a ``ResponseApdu`` and the command name so every error says which
command failed. ``IsoCard`` runs them over a ``Transport`` for interactive use (middleware checks,
the station's diagnostics); personalization programs use the builders sans I/O.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from cards import tlv
from cards.apdu import MAX_SHORT_LE, CommandApdu, ResponseApdu
from cards.errors import MalformedResponse, StatusWordError, TlvError
from cards.transport import Transport, transmit_apdu

__all__ = [
    "FileControl",
    "IsoCard",
    "RsaPublicKey",
    "activate_file",
    "build_fcp",
    "change_reference_data",
    "check",
    "check_verification",
    "create_file",
    "delete_file",
    "external_authenticate",
    "generate_asymmetric_key_pair",
    "get_challenge",
    "get_data",
    "get_data_ber",
    "get_response",
    "manage_channel_close",
    "manage_channel_open",
    "manage_security_environment",
    "parse_fcp",
    "parse_public_key",
    "pso_compute_digital_signature",
    "pso_decipher",
    "put_data",
    "put_data_ber",
    "read_binary",
    "reset_retry_counter",
    "select_aid",
    "select_fid",
    "select_path",
    "update_binary",
    "update_binary_chunks",
    "verify",
]

OK = (0x9000,)

# --- SELECT ------------------------------------------------------------------------------------


def select_aid(aid: bytes, *, fci: bool = True) -> CommandApdu:
    """SELECT by DF name: ``00 A4 04 00 Lc AID 00`` (``P2 0C``, no Le, when no FCI is wanted)."""
    if not 1 <= len(aid) <= 16:
        raise ValueError(f"AID of {len(aid)} bytes (1..16)")
    if fci:
        return CommandApdu(0x00, 0xA4, 0x04, 0x00, aid, MAX_SHORT_LE)
    return CommandApdu(0x00, 0xA4, 0x04, 0x0C, aid)


def _fid_bytes(fid: int) -> bytes:
    if not 0 <= fid <= 0xFFFF:
        raise ValueError(f"file identifier {fid:X} is not 2 bytes")
    return fid.to_bytes(2, "big")


def select_fid(fid: int, *, fcp: bool = False) -> CommandApdu:
    """SELECT by FID under the current DF: ``00 A4 00 0C 02 FID`` (``P2 04`` + Le for FCP)."""
    if fcp:
        return CommandApdu(0x00, 0xA4, 0x00, 0x04, _fid_bytes(fid), MAX_SHORT_LE)
    return CommandApdu(0x00, 0xA4, 0x00, 0x0C, _fid_bytes(fid))


def select_path(path: tuple[int, ...], *, from_mf: bool = True, fcp: bool = False) -> CommandApdu:
    """SELECT by path (FIDs without ``3F00``): ``P1 08`` from the MF, ``09`` from the current DF."""
    if not path:
        raise ValueError("empty path")
    data = b"".join(_fid_bytes(f) for f in path)
    p1 = 0x08 if from_mf else 0x09
    if fcp:
        return CommandApdu(0x00, 0xA4, p1, 0x04, data, MAX_SHORT_LE)
    return CommandApdu(0x00, 0xA4, p1, 0x0C, data)


# --- binary files --------------------------------------------------------------------------------


def _offset(offset: int) -> tuple[int, int]:
    if not 0 <= offset <= 0x7FFF:
        raise ValueError(f"offset {offset} outside 0..32767")
    return offset >> 8, offset & 0xFF


def read_binary(offset: int, length: int = MAX_SHORT_LE) -> CommandApdu:
    """READ BINARY ``00 B0 off_hi off_lo Le`` from the current EF."""
    p1, p2 = _offset(offset)
    return CommandApdu(0x00, 0xB0, p1, p2, le=length)


def update_binary(offset: int, data: bytes) -> CommandApdu:
    """UPDATE BINARY ``00 D6 off_hi off_lo Lc data`` of the current EF."""
    if not data:
        raise ValueError("UPDATE BINARY without data")
    p1, p2 = _offset(offset)
    return CommandApdu(0x00, 0xD6, p1, p2, data)


def update_binary_chunks(data: bytes, chunk: int, offset: int = 0) -> list[CommandApdu]:
    """UPDATE BINARY commands writing ``data`` at ``offset`` in pieces of ``chunk`` bytes."""
    if chunk < 1:
        raise ValueError("chunk size must be positive")
    return [update_binary(offset + i, data[i : i + chunk]) for i in range(0, len(data), chunk)]


@dataclass(frozen=True, slots=True)
class FileControl:
    """The parts of an FCP template (``62``) this library writes and reads."""

    fid: int | None = None
    size: int | None = None
    descriptor: int | None = None
    df_name: bytes | None = None
    lifecycle: int | None = None
    security: bytes | None = None
    """Compact security attributes (tag ``8C``): access mode byte then one SC byte per bit set."""


@functools.lru_cache(maxsize=256)
def build_fcp(control: FileControl) -> bytes:
    """Encode an FCP template ``62`` (tags 80, 82, 83, 84, 8A, 8C in that order).

    Remembered: a product's files are the same on every card it personalizes (issue 12)."""
    items: list[tlv.Tlv] = []
    if control.size is not None:
        items.append(tlv.Tlv(0x80, control.size.to_bytes(2, "big")))
    if control.descriptor is not None:
        items.append(tlv.Tlv(0x82, bytes([control.descriptor])))
    if control.fid is not None:
        items.append(tlv.Tlv(0x83, _fid_bytes(control.fid)))
    if control.df_name is not None:
        items.append(tlv.Tlv(0x84, control.df_name))
    if control.lifecycle is not None:
        items.append(tlv.Tlv(0x8A, bytes([control.lifecycle])))
    if control.security is not None:
        items.append(tlv.Tlv(0x8C, control.security))
    return tlv.encode(0x62, items)


def parse_fcp(data: bytes, command: str = "SELECT") -> FileControl:
    """Decode an FCP (``62``) or FCI (``6F``) template; MalformedResponse naming ``command``."""
    try:
        (template,) = tlv.decode(data)
        if template.tag not in (0x62, 0x6F):
            raise MalformedResponse(command, f"expected FCP/FCI template, got tag {template.tag:X}")
        items = template.children()
    except (TlvError, ValueError) as exc:
        raise MalformedResponse(command, f"undecodable FCP: {exc}") from exc

    def get(tag: int) -> bytes | None:
        found = tlv.find(items, tag)
        return None if found is None else found.value

    size = get(0x80) or get(0x81)
    fid = get(0x83)
    descriptor = get(0x82)
    lifecycle = get(0x8A)
    return FileControl(
        fid=int.from_bytes(fid, "big") if fid else None,
        size=int.from_bytes(size, "big") if size else None,
        descriptor=descriptor[0] if descriptor else None,
        df_name=get(0x84),
        lifecycle=lifecycle[0] if lifecycle else None,
        security=get(0x8C),
    )


def create_file(fcp: bytes) -> CommandApdu:
    """CREATE FILE ``00 E0 00 00 Lc FCP(62…)``."""
    return CommandApdu(0x00, 0xE0, 0x00, 0x00, fcp)


def delete_file(fid: int | None = None) -> CommandApdu:
    """DELETE FILE ``00 E4 00 00 [02 FID]`` (no data: the current file)."""
    if fid is None:
        return CommandApdu(0x00, 0xE4, 0x00, 0x00)
    return CommandApdu(0x00, 0xE4, 0x00, 0x00, _fid_bytes(fid))


def activate_file() -> CommandApdu:
    """ACTIVATE FILE ``00 44 00 00`` (ISO 7816-9): the current DF enters its operational state."""
    return CommandApdu(0x00, 0x44, 0x00, 0x00)


# --- security ------------------------------------------------------------------------------------


def get_challenge(length: int = 8) -> CommandApdu:
    """GET CHALLENGE ``00 84 00 00 Le``."""
    return CommandApdu(0x00, 0x84, 0x00, 0x00, le=length)


def verify(reference: int, pin: bytes | None) -> CommandApdu:
    """VERIFY ``00 20 00 ref Lc PIN``; without data it asks the PIN status (``63 Cx``/``90 00``)."""
    if pin is None:
        return CommandApdu(0x00, 0x20, 0x00, reference)
    if not pin:
        raise ValueError("empty PIN: pass None to ask the status")
    return CommandApdu(0x00, 0x20, 0x00, reference, pin)


def change_reference_data(reference: int, new: bytes, old: bytes | None = None) -> CommandApdu:
    """CHANGE REFERENCE DATA: ``P1 00`` old ‖ new; ``P1 01`` new only (initial setting)."""
    if not new:
        raise ValueError("CHANGE REFERENCE DATA without new reference data")
    if old is None:
        return CommandApdu(0x00, 0x24, 0x01, reference, new)
    return CommandApdu(0x00, 0x24, 0x00, reference, old + new)


def reset_retry_counter(
    reference: int, p1: int, *, puk: bytes | None = None, new_pin: bytes | None = None
) -> CommandApdu:
    """RESET RETRY COUNTER in every P1 form (00 PUK‖new, 01 PUK, 02 new, 03 none; CPS4 03+data)."""
    if p1 == 0x00:
        if not puk or not new_pin:
            raise ValueError("RESET RETRY COUNTER P1 00 needs the PUK and the new PIN")
        data = puk + new_pin
    elif p1 == 0x01:
        if not puk or new_pin:
            raise ValueError("RESET RETRY COUNTER P1 01 takes the PUK only")
        data = puk
    elif p1 == 0x02:
        if puk or not new_pin:
            raise ValueError("RESET RETRY COUNTER P1 02 takes the new PIN only")
        data = new_pin
    elif p1 == 0x03:
        # ISO: no data. The CPS4 middleware sends PUK ‖ new PIN with P1 03 (reference/cps.md §2).
        data = (puk or b"") + (new_pin or b"")
    else:
        raise ValueError(f"RESET RETRY COUNTER P1 {p1:02X} is not 00..03")
    return CommandApdu(0x00, 0x2C, p1, reference, data)


def manage_security_environment(
    template: int, key_reference: int, algorithm: int | None = None, p1: int = 0x41
) -> CommandApdu:
    """MSE SET ``00 22 P1 template`` with ``80 01 alg`` and ``84 01 keyref``."""
    if template not in (0xA4, 0xB6, 0xB8):
        raise ValueError(f"MSE template {template:02X} is not A4/B6/B8")
    data = b""
    if algorithm is not None:
        data += tlv.encode(0x80, bytes([algorithm]))
    data += tlv.encode(0x84, bytes([key_reference]))
    return CommandApdu(0x00, 0x22, p1, template, data)


def pso_compute_digital_signature(data: bytes) -> CommandApdu:
    """PSO: COMPUTE DIGITAL SIGNATURE ``00 2A 9E 9A Lc DigestInfo-or-hash 00``."""
    if not data:
        raise ValueError("nothing to sign")
    return CommandApdu(0x00, 0x2A, 0x9E, 0x9A, data, MAX_SHORT_LE)


def pso_decipher(cryptogram: bytes, padding_indicator: int = 0x81) -> CommandApdu:
    """PSO: DECIPHER ``00 2A 80 86 Lc padding-indicator ‖ cryptogram 00``."""
    if not cryptogram:
        raise ValueError("nothing to decipher")
    data = bytes([padding_indicator]) + cryptogram
    return CommandApdu(0x00, 0x2A, 0x80, 0x86, data, MAX_SHORT_LE, extended=len(data) > 255)


def generate_asymmetric_key_pair(
    key_reference: int, algorithm: int, *, ins: int = 0x47, p1: int = 0x00
) -> CommandApdu:
    """GENERATE ASYMMETRIC KEY PAIR ``00 47 P1 00 Lc AC{80 alg, 84 keyref} 00`` → ``7F49``."""
    if ins not in (0x46, 0x47):
        raise ValueError("GENERATE ASYMMETRIC KEY PAIR is INS 46 (ISO) or 47")
    crt = tlv.encode(
        0xAC, [tlv.Tlv(0x80, bytes([algorithm])), tlv.Tlv(0x84, bytes([key_reference]))]
    )
    return CommandApdu(0x00, ins, p1, 0x00, crt, MAX_SHORT_LE)


@dataclass(frozen=True, slots=True)
class RsaPublicKey:
    """An RSA public key read from the card."""

    modulus: int
    exponent: int

    @property
    def bits(self) -> int:
        """Modulus size in bits."""
        return self.modulus.bit_length()

    def encode_7f49(self) -> bytes:
        """The ``7F49 {81 n, 82 e}`` template a card returns."""
        n = self.modulus.to_bytes((self.modulus.bit_length() + 7) // 8, "big")
        e = self.exponent.to_bytes((self.exponent.bit_length() + 7) // 8, "big")
        return tlv.encode(0x7F49, [tlv.Tlv(0x81, n), tlv.Tlv(0x82, e)])


def parse_public_key(data: bytes, command: str = "GENERATE ASYMMETRIC KEY PAIR") -> RsaPublicKey:
    """Parse ``7F49 {81 modulus, 82 exponent}``; MalformedResponse naming ``command``."""
    try:
        outer = tlv.decode(data)
        if len(outer) != 1 or outer[0].tag != 0x7F49:
            raise MalformedResponse(command, "expected one 7F49 public key template")
        items = outer[0].children()
        n = tlv.require(items, 0x81).value
        e = tlv.require(items, 0x82).value
    except TlvError as exc:
        raise MalformedResponse(command, f"public key template: {exc}") from exc
    modulus, exponent = int.from_bytes(n, "big"), int.from_bytes(e, "big")
    if modulus < 3 or exponent < 3 or not modulus & 1 or not exponent & 1:
        raise MalformedResponse(command, "public key with an implausible modulus or exponent")
    return RsaPublicKey(modulus, exponent)


def external_authenticate(key_reference: int, cryptogram: bytes, p1: int = 0x00) -> CommandApdu:
    """EXTERNAL AUTHENTICATE ``00 82 P1 keyref Lc cryptogram``."""
    if not cryptogram:
        raise ValueError("EXTERNAL AUTHENTICATE without cryptogram")
    return CommandApdu(0x00, 0x82, p1, key_reference, cryptogram)


# --- data objects -------------------------------------------------------------------------------


def get_data(tag: int, length: int = MAX_SHORT_LE) -> CommandApdu:
    """GET DATA ``00 CA P1P2 Le`` for a 1- or 2-byte tag."""
    if not 0 <= tag <= 0xFFFF:
        raise ValueError(f"GET DATA tag {tag:X} is not 1-2 bytes")
    return CommandApdu(0x00, 0xCA, tag >> 8, tag & 0xFF, le=length)


def get_data_ber(tag_list: bytes, length: int = MAX_SHORT_LE) -> CommandApdu:
    """GET DATA (BER-TLV) ``00 CB 3F FF Lc 5C… Le``; ``tag_list`` is the encoded tag list."""
    return CommandApdu(0x00, 0xCB, 0x3F, 0xFF, tlv.encode(0x5C, tag_list), length)


def put_data(tag: int, data: bytes) -> CommandApdu:
    """PUT DATA ``00 DA P1P2 Lc data``."""
    if not 0 <= tag <= 0xFFFF:
        raise ValueError(f"PUT DATA tag {tag:X} is not 1-2 bytes")
    return CommandApdu(0x00, 0xDA, tag >> 8, tag & 0xFF, data)


def put_data_ber(data_objects: bytes) -> CommandApdu:
    """PUT DATA (BER-TLV) ``00 DB 3F FF Lc data-objects``."""
    return CommandApdu(0x00, 0xDB, 0x3F, 0xFF, data_objects)


def get_response(length: int) -> CommandApdu:
    """GET RESPONSE ``00 C0 00 00 Le`` after ``61 xx``."""
    return CommandApdu(0x00, 0xC0, 0x00, 0x00, le=length)


def manage_channel_open() -> CommandApdu:
    """MANAGE CHANNEL open ``00 70 00 00 01`` → the new channel number."""
    return CommandApdu(0x00, 0x70, 0x00, 0x00, le=1)


def manage_channel_close(channel: int) -> CommandApdu:
    """MANAGE CHANNEL close ``00 70 80 ch``."""
    if not 1 <= channel <= 19:
        raise ValueError(f"channel {channel} cannot be closed")
    return CommandApdu(0x00, 0x70, 0x80, channel)


# --- response checks ----------------------------------------------------------------------------


def check(response: ResponseApdu, command: str, expected: tuple[int, ...] = OK) -> bytes:
    """Return the response data if SW is expected, else StatusWordError naming ``command``."""
    response.check(command, expected)
    return response.data


def check_verification(response: ResponseApdu, command: str, what: str = "PIN") -> bytes:
    """Like ``check`` with PIN wording: "VERIFY: wrong PIN, 2 tries left", "PIN blocked"."""
    sw = response.sw
    if sw == 0x9000:
        return response.data
    if sw & 0xFFF0 == 0x63C0:
        tries = sw & 0x0F
        word = "try" if tries == 1 else "tries"
        raise StatusWordError(command, sw, f"wrong {what}, {tries} {word} left")
    if sw == 0x6983:
        raise StatusWordError(command, sw, f"{what} blocked")
    if sw == 0x6984:
        raise StatusWordError(command, sw, f"{what} not set (reference data not usable)")
    raise StatusWordError(command, sw)


# --- an interactive client ---------------------------------------------------------------------


class IsoCard:
    """ISO 7816 commands over a transport on one logical channel (interactive use, not programs)."""

    def __init__(self, transport: Transport, channel: int = 0) -> None:
        self.transport = transport
        self.channel = channel

    def send(self, apdu: CommandApdu, command: str, expected: tuple[int, ...] = OK) -> bytes:
        """Send on this channel (following ``61 xx``) and return the data of an expected SW."""
        response = transmit_apdu(self.transport, apdu.on_channel(self.channel), command)
        return check(response, command, expected)

    def select_aid(self, aid: bytes, *, fci: bool = False) -> bytes:
        """SELECT an application by AID; returns its FCI if asked."""
        return self.send(select_aid(aid, fci=fci), "SELECT")

    def select_path(self, path: tuple[int, ...]) -> None:
        """SELECT a file by path from the MF."""
        self.send(select_path(path), "SELECT")

    def read_binary(self, offset: int = 0, length: int = MAX_SHORT_LE) -> bytes:
        """READ BINARY of the current EF (end-of-file warning ``6282`` accepted)."""
        return self.send(read_binary(offset, length), "READ BINARY", (0x9000, 0x6282))

    def read_file(self, path: tuple[int, ...], chunk: int = 0xE0) -> bytes:
        """Select an EF by path and read it whole, in chunks, until a short read."""
        self.select_path(path)
        out = b""
        while True:
            response = transmit_apdu(
                self.transport, read_binary(len(out), chunk).on_channel(self.channel), "READ BINARY"
            )
            if response.sw in (0x6B00, 0x6282) and not response.data:
                return out
            out += check(response, "READ BINARY", (0x9000, 0x6282))
            if len(response.data) < chunk or response.sw == 0x6282:
                return out

    def pin_status(self, reference: int) -> int | None:
        """Tries left for a PIN (None if already verified in this session)."""
        response = transmit_apdu(
            self.transport, verify(reference, None).on_channel(self.channel), "VERIFY"
        )
        if response.sw == 0x9000:
            return None
        if response.sw & 0xFFF0 == 0x63C0:
            return response.sw & 0x0F
        if response.sw == 0x6983:
            return 0
        raise StatusWordError("VERIFY", response.sw)

    def verify(self, reference: int, pin: bytes) -> None:
        """VERIFY a PIN; StatusWordError "VERIFY: wrong PIN, n tries left" on failure."""
        response = transmit_apdu(
            self.transport, verify(reference, pin).on_channel(self.channel), "VERIFY"
        )
        check_verification(response, "VERIFY")

    def sign(self, key_reference: int, digest_info: bytes, algorithm: int | None = None) -> bytes:
        """MSE (B6) then PSO: COMPUTE DIGITAL SIGNATURE; returns the signature."""
        self.send(
            manage_security_environment(0xB6, key_reference, algorithm),
            "MANAGE SECURITY ENVIRONMENT",
        )
        return self.send(
            pso_compute_digital_signature(digest_info), "PSO: COMPUTE DIGITAL SIGNATURE"
        )

    def get_challenge(self, length: int = 8) -> bytes:
        """GET CHALLENGE; MalformedResponse if the card returns the wrong length."""
        data = self.send(get_challenge(length), "GET CHALLENGE")
        if len(data) != length:
            raise MalformedResponse("GET CHALLENGE", f"{len(data)} bytes instead of {length}")
        return data
