"""Minimal host sides (SCP03, DESFire EV2) for the simulator tests, from ``cards.crypto`` only.

Deliberately independent of ``cardsim``'s card-side code so both ends are checked against each
other and against the published vectors.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from cards import crypto

Transmit = Callable[[bytes], bytes]


def split(resp: bytes) -> tuple[bytes, int]:
    """(data, SW)."""
    return resp[:-2], int.from_bytes(resp[-2:], "big")


class Scp03Host:
    """Host end of an SCP03 session with the card manager."""

    def __init__(
        self, transmit: Transmit, key_enc: bytes, key_mac: bytes, *, channel: int = 1
    ) -> None:
        self.transmit = transmit
        self.key_enc = key_enc
        self.key_mac = key_mac
        self.channel = channel
        self.chaining = bytes(16)
        self.counter = 0
        self.level = 0

    def select_isd(self) -> int:
        resp = self.transmit(
            bytes([self.channel, 0xA4, 0x04, 0x00, 7]) + bytes.fromhex("A0000001510000") + b"\x00"
        )
        return split(resp)[1]

    def open(self, level: int = 0x33, host_challenge: bytes | None = None) -> bytes:
        """INITIALIZE UPDATE + EXTERNAL AUTHENTICATE; returns the KDD."""
        hc = host_challenge or secrets.token_bytes(8)
        data, sw = split(self.transmit(bytes([0x80 | self.channel, 0x50, 0, 0, 8]) + hc + b"\x00"))
        assert sw == 0x9000, hex(sw)
        kdd, cc, card_crypto = data[:10], data[13:21], data[21:29]
        self.keys = crypto.scp03_session_keys(self.key_enc, self.key_mac, hc, cc)
        assert crypto.scp03_card_cryptogram(self.keys.s_mac, hc, cc) == card_crypto
        host_crypto = crypto.scp03_host_cryptogram(self.keys.s_mac, hc, cc)
        header = bytes([0x84 | self.channel, 0x82, level, 0x00, 0x10])
        full = crypto.scp03_c_mac(self.keys.s_mac, bytes(16), header + host_crypto)
        self.chaining = full
        _, sw = split(self.transmit(header + host_crypto + full[:8]))
        assert sw == 0x9000, hex(sw)
        self.level = level
        self.counter = 0
        return kdd

    def wrap(
        self, cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None
    ) -> bytes:
        self.counter += 1
        if self.level & 0x02 and data:
            data = crypto.scp03_encrypt_command_data(self.keys.s_enc, self.counter, data)
        header = bytes([cla | 0x04 | self.channel, ins, p1, p2, len(data) + 8])
        full = crypto.scp03_c_mac(self.keys.s_mac, self.chaining, header + data)
        self.chaining = full
        return header + data + full[:8] + (b"" if le is None else bytes([le & 0xFF]))

    def send(
        self, cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = 0
    ) -> tuple[bytes, int]:
        """Wrap, send, collect GET RESPONSE, check R-MAC and decrypt."""
        resp = self.transmit(self.wrap(cla, ins, p1, p2, data, le))
        out, sw = split(resp)
        while sw >> 8 == 0x61:
            more, sw = split(self.transmit(bytes([self.channel, 0xC0, 0, 0, sw & 0xFF])))
            out += more
        if self.level & 0x10 and sw != 0x9000 and sw >> 8 not in (0x62, 0x63):
            assert out == b"", f"SW {sw:04X} is an error status: no data, no R-MAC"
        if self.level & 0x10 and (sw == 0x9000 or sw >> 8 in (0x62, 0x63)):
            out, rmac = out[:-8], out[-8:]
            expect = crypto.scp03_r_mac(self.keys.s_rmac, self.chaining, out, sw.to_bytes(2, "big"))
            assert rmac == expect
            if self.level & 0x20 and out:
                out = crypto.scp03_decrypt_response_data(self.keys.s_enc, self.counter, out)
        return out, sw


class Ev2Host:
    """Host end of DESFire EV2 authentication and secure messaging."""

    def __init__(self, transmit: Transmit) -> None:
        self.transmit = transmit
        self.ti = b""
        self.ctr = 0

    def cmd(self, ins: int, data: bytes = b"") -> tuple[bytes, int]:
        resp = self.transmit(
            bytes([0x90, ins, 0, 0]) + (bytes([len(data)]) + data if data else b"") + b"\x00"
        )
        assert resp[-2] == 0x91, resp.hex()
        return resp[:-2], resp[-1]

    def authenticate(self, key_no: int, key: bytes, rnd_a: bytes | None = None) -> int:
        rnd_a = rnd_a or secrets.token_bytes(16)
        enc_b, st = self.cmd(0x71, bytes([key_no, 0]))
        if st != 0xAF:
            return st
        rnd_b = crypto.aes_cbc_decrypt(key, bytes(16), enc_b)
        part2 = crypto.aes_cbc_encrypt(key, bytes(16), rnd_a + crypto.rotate_left(rnd_b))
        answer, st = self.cmd(0xAF, part2)
        if st != 0x00:
            return st
        plain = crypto.aes_cbc_decrypt(key, bytes(16), answer)
        assert plain[4:20] == crypto.rotate_left(rnd_a)
        self.ti = plain[:4]
        self.ctr = 0
        self.keys = crypto.ev2_session_keys(key, rnd_a, rnd_b)
        return 0

    def plain_cmd(self, ins: int, data: bytes = b"") -> tuple[bytes, int]:
        """A plain-mode command while authenticated: no MAC, but the counter moves."""
        out, st = self.cmd(ins, data)
        if st == 0x00:
            self.ctr += 1
        return out, st

    def mac_cmd(
        self,
        ins: int,
        header: bytes = b"",
        data: bytes = b"",
        *,
        full: bool = False,
        resp_full: bool = False,
    ) -> tuple[bytes, int]:
        """A command in MAC or FULL mode; returns the verified (decrypted) response data."""
        if full and data:
            data = crypto.ev2_encrypt(
                self.keys.enc, crypto.ev2_command_iv(self.keys.enc, self.ti, self.ctr), data
            )
        mac = crypto.ev2_command_mac(self.keys.mac, ins, self.ctr, self.ti, header + data)
        out, st = self.cmd(ins, header + data + mac)
        if st != 0x00:
            return out, st
        self.ctr += 1
        body, rmac = out[:-8], out[-8:]
        assert crypto.ev2_response_mac(self.keys.mac, 0, self.ctr, self.ti, body) == rmac
        out = body
        if resp_full and out:
            out = crypto.ev2_decrypt(
                self.keys.enc, crypto.ev2_response_iv(self.keys.enc, self.ti, self.ctr), out
            )
        return out, st


TEST_PIN = b"1234"
TEST_PUK = b"12345678"
ADMIN_KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")


def fcp_ef(fid: int, size: int, update_sc: int = 0x40, read_sc: int = 0x00) -> bytes:
    body = (
        bytes([0x83, 2])
        + fid.to_bytes(2, "big")
        + bytes([0x80, 2])
        + size.to_bytes(2, "big")
        + bytes([0x82, 1, 1, 0x8C, 3, 0x03, update_sc, read_sc])
    )
    return bytes([0x62, len(body)]) + body


def fcp_df(fid: int, name: bytes) -> bytes:
    body = (
        bytes([0x83, 2]) + fid.to_bytes(2, "big") + bytes([0x82, 1, 0x38, 0x84, len(name)]) + name
    )
    return bytes([0x62, len(body)]) + body


def personalize(
    transmit: Transmit,
    key_enc: bytes,
    key_mac: bytes,
    *,
    files: dict[tuple[int, ...], bytes] | None = None,
    key_refs: tuple[int, ...] = (1,),
    lock: bool = False,
) -> dict[int, bytes]:
    """A small CPS4 personalization through SCP03: files, keys, PIN/PUK, admin key.

    ``files`` maps a path of FIDs under the MF to content; a 1-tuple (fid,) DF entry is created by
    ``fcp_df`` when the content is a ``("DF", name)`` marker encoded as ``b"DF:" + name``.
    Returns the 7F49 public-key templates by key reference.
    """
    host = Scp03Host(transmit, key_enc, key_mac)
    assert host.select_isd() == 0x9000
    host.open(0x33)
    for path, content in (files or {}).items():
        parent, fid = path[:-1], path[-1]
        sel = b"".join(f.to_bytes(2, "big") for f in parent)
        if sel:
            assert host.send(0x00, 0xA4, 0x08, 0x0C, sel, le=None)[1] == 0x9000
        else:
            assert host.send(0x00, 0xA4, 0x00, 0x0C, b"\x3f\x00", le=None)[1] == 0x9000
        if content.startswith(b"DF:"):
            assert host.send(0x00, 0xE0, 0, 0, fcp_df(fid, content[3:]), le=None)[1] == 0x9000
            continue
        assert host.send(0x00, 0xE0, 0, 0, fcp_ef(fid, len(content)), le=None)[1] == 0x9000
        for off in range(0, len(content), 200):
            chunk = content[off : off + 200]
            assert host.send(0x00, 0xD6, off >> 8, off & 0xFF, chunk, le=None)[1] == 0x9000
    publics = {}
    for ref in key_refs:
        data, sw = host.send(0x00, 0x47, 0x00, ref, le=0)
        assert sw == 0x9000, hex(sw)
        publics[ref] = data
    assert host.send(0x00, 0x24, 0x01, 0x81, TEST_PIN, le=None)[1] == 0x9000
    assert host.send(0x00, 0x24, 0x01, 0x82, TEST_PUK, le=None)[1] == 0x9000
    assert host.send(0x00, 0x24, 0x01, 0x8A, b"\x01" + ADMIN_KEY, le=None)[1] == 0x9000
    if lock:  # the product's closing step: ACTIVATE FILE on the MF
        assert host.send(0x00, 0xA4, 0x00, 0x0C, b"\x3f\x00", le=None)[1] == 0x9000
        assert host.send(0x00, 0x44, 0x00, 0x00, le=None)[1] == 0x9000
    return publics


def public_key_from_template(template: bytes) -> tuple[int, int]:
    """(n, e) from ``7F49 82 01 09 81 82 01 00 n 82 03 e``."""
    assert template[:2] == b"\x7f\x49"
    body = template[5:] if template[2] == 0x82 else template[4:]
    assert body[:4] == b"\x81\x82\x01\x00"
    n = int.from_bytes(body[4:260], "big")
    assert body[260] == 0x82
    e = int.from_bytes(body[262 : 262 + body[261]], "big")
    return n, e
