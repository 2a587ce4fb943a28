"""A recording station and what it can learn (issue 11 §1; ADR 0018). Test code only.

``Recorder`` sits between the station's relay and a card reader and keeps every APDU it relays
with its answer, as a compromised station would. ``Eavesdropper`` then attacks the transcript with
every public value it is given:

- DESFire: each AuthenticateEV2First (``90 71``) is tried with every candidate key (RndB decrypted
  from the card's first answer must come back rotated in the host's second command). A key that
  fits gives the session keys (AN12196); the attacker then decrypts every FULL-mode command of the
  session (ChangeKey cryptograms, SetConfiguration, WriteData) and ReadData answer, adds the keys
  it recovers to its candidates, and starts again until it learns nothing new.
- SCP03: INITIALIZE UPDATE's card cryptogram is checked with static keys diversified from each
  candidate issuer master (and each candidate used as a static key directly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cards import crypto
from cards.errors import CryptoError

AUTH_FIRST = 0x71
AUTH_NONFIRST = 0x77
MORE = 0xAF
FULL_HEADERS = {0xC4: 1, 0x5C: 1, 0x8D: 7, 0x3D: 7}  # FULL-mode command data after this header
ENDS_SESSION = {0x5A, AUTH_FIRST, AUTH_NONFIRST, 0xAA}


@dataclass
class Exchange:
    interface: str
    command: bytes
    response: bytes


class Recorder:
    """A reader transport that keeps what it relays (the station's view of the card)."""

    def __init__(self, inner: Any, interface: str, log: list[Exchange]) -> None:
        self.inner = inner
        self.interface = interface
        self.log = log

    def transmit(self, apdu: bytes) -> bytes:
        response = bytes(self.inner.transmit(apdu))
        self.log.append(Exchange(self.interface, bytes(apdu), response))
        return response


def _data(command: bytes) -> bytes:
    """The data field of a short ISO-wrapped command ``CLA INS P1 P2 [Lc data] [Le]``."""
    if len(command) <= 5:
        return b""
    return command[5 : 5 + command[4]]


@dataclass
class Session:
    """An AuthenticateEV2First the attacker broke, and what came after it."""

    key_no: int
    key: bytes
    enc: bytes
    mac: bytes
    ti: bytes
    commands: list[tuple[int, bytes, bytes]]  # (INS, data of all frames, response body)


@dataclass
class Findings:
    sessions_seen: int = 0
    sessions_broken: list[Session] = field(default_factory=list)
    keys: set[bytes] = field(default_factory=set)
    plaintexts: list[bytes] = field(default_factory=list)
    scp03_broken: bool = False

    def learned(self, secret: bytes) -> bool:
        return secret in self.keys or any(secret in p for p in self.plaintexts)


class Eavesdropper:
    def __init__(
        self,
        transcript: list[Exchange],
        *,
        public_keys: set[bytes],
        public_masters: set[bytes],
        system_identifier: bytes,
        aids: tuple[bytes, ...],
        scp03_kvn: int,
    ) -> None:
        self.transcript = transcript
        self.public_masters = public_masters
        self.candidates = set(public_keys)
        self.system_identifier = system_identifier
        self.aids = aids
        self.scp03_kvn = scp03_kvn

    # --- DESFire ---------------------------------------------------------------------------

    def _contactless(self) -> list[Exchange]:
        return [e for e in self.transcript if e.interface == "contactless"]

    def _uids(self) -> set[bytes]:
        """The UID the reader hands out for ``FF CA 00 00 00`` (in the clear)."""
        return {
            e.response[:-2]
            for e in self._contactless()
            if e.command.startswith(b"\xff\xca") and e.response.endswith(b"\x90\x00")
        }

    def _diversified(self) -> set[bytes]:
        out = set()
        for uid in self._uids():
            for aid in self.aids:
                m = crypto.an10922_input(uid, aid, self.system_identifier)
                for master in self.public_masters:
                    if len(master) == 16:
                        out.add(crypto.an10922_diversify_aes128(master, m))
        return out

    def _sessions(self) -> list[tuple[int, int]]:
        """(index of the 90 71 command, key number) of every AuthenticateEV2First answered."""
        ex = self._contactless()
        found = []
        for i, e in enumerate(ex[:-1]):
            if e.command[:2] == bytes([0x90, AUTH_FIRST]) and e.response.endswith(b"\x91\xaf"):
                found.append((i, _data(e.command)[0]))
        return found

    def _try(self, index: int, key: bytes) -> Session | None:
        ex = self._contactless()
        enc_b = ex[index].response[:-2]
        part2, answer = ex[index + 1], ex[index + 1].response
        if len(enc_b) != 16 or not answer.endswith(b"\x91\x00"):
            return None
        rnd_b = crypto.aes_cbc_decrypt(key, bytes(16), enc_b)
        plain = crypto.aes_cbc_decrypt(key, bytes(16), _data(part2.command))
        rnd_a = plain[:16]
        if plain[16:32] != crypto.rotate_left(rnd_b):
            return None
        ti = crypto.aes_cbc_decrypt(key, bytes(16), answer[:-2])[:4]
        keys = crypto.ev2_session_keys(key, rnd_a, rnd_b)
        commands: list[tuple[int, bytes, bytes]] = []
        pending: tuple[int, bytes] | None = None
        for e in ex[index + 2 :]:
            ins, data = e.command[1], _data(e.command)
            if pending is not None and ins == MORE:
                pending = (pending[0], pending[1] + data)
            else:
                if ins in ENDS_SESSION:
                    break
                pending = (ins, data)
            if e.response.endswith(b"\x91\xaf"):
                continue
            commands.append((pending[0], pending[1], e.response[:-2]))
            if not e.response.endswith(b"\x91\x00"):
                break
            pending = None
        return Session(_data(ex[index].command)[0], key, keys.enc, keys.mac, ti, commands)

    def _read(self, session: Session) -> None:
        """Decrypt what the session carried; recovered keys become candidates."""
        for ctr, (ins, data, response) in enumerate(session.commands):
            if ins in FULL_HEADERS and len(data) > FULL_HEADERS[ins] + 8:
                header = FULL_HEADERS[ins]
                body = data[header:-8]
                try:
                    plain = crypto.unpad_iso9797_m2(
                        crypto.aes_cbc_decrypt(
                            session.enc, crypto.ev2_command_iv(session.enc, session.ti, ctr), body
                        )
                    )
                except (CryptoError, ValueError):
                    plain = b""
                self._learn(ins, data[:header], plain, session)
            if ins == 0xAD and len(response) > 8:  # ReadData, FULL: the answer is encrypted
                try:
                    plain = crypto.aes_cbc_decrypt(
                        session.enc,
                        crypto.ev2_response_iv(session.enc, session.ti, ctr + 1),
                        response[:-8],
                    )
                    self.findings.plaintexts.append(plain)
                except (CryptoError, ValueError):
                    pass

    def _learn(self, ins: int, header: bytes, plain: bytes, session: Session) -> None:
        if not plain:
            return
        self.findings.plaintexts.append(plain)
        if ins == 0x5C and header == b"\x01":
            self._add(plain[:16])  # the default key of new applications
        elif ins == 0xC4 and header[0] == session.key_no:
            self._add(plain[:16])  # the authenticated key changed to this
        elif ins == 0xC4 and len(plain) >= 21:
            for old in list(self.candidates):
                new = crypto.xor(plain[:16], old)
                if crypto.desfire_crc32(new) == plain[17:21]:
                    self._add(new)

    def _add(self, key: bytes) -> None:
        if key not in self.candidates:
            self.candidates.add(key)
            self.grew = True

    # --- SCP03 -----------------------------------------------------------------------------

    def _scp03(self) -> bool:
        for e in self.transcript:
            if e.interface != "contact" or e.command[1:2] != b"\x50" or e.command[0] & 0x80 == 0:
                continue
            host_challenge = _data(e.command)
            answer = e.response[:-2]
            if len(answer) < 29 or len(host_challenge) != 8:
                continue
            kdd, card_challenge, cryptogram = answer[:10], answer[13:21], answer[21:29]
            statics = [(k, k) for k in self.candidates | self.public_masters if len(k) == 16]
            for master in self.public_masters:
                enc = crypto.scp03_diversify_key(master, kdd, crypto.SCP03_DIVERSIFY_ENC, 16)
                mac = crypto.scp03_diversify_key(master, kdd, crypto.SCP03_DIVERSIFY_MAC, 16)
                statics.append((enc, mac))
            for enc, mac in statics:
                keys = crypto.scp03_session_keys(enc, mac, host_challenge, card_challenge)
                if crypto.scp03_card_cryptogram(keys.s_mac, host_challenge, card_challenge) == (
                    cryptogram
                ):
                    return True
        return False

    def attack(self) -> Findings:
        self.findings = Findings()
        sessions = self._sessions()
        self.findings.sessions_seen = len(sessions)
        broken: dict[int, Session] = {}
        self.candidates |= self._diversified()
        self.grew = True
        while self.grew:
            self.grew = False
            for index, _ in sessions:
                if index in broken:
                    continue
                for key in list(self.candidates):
                    session = self._try(index, key)
                    if session is not None:
                        broken[index] = session
                        self.grew = True
                        self._read(session)
                        break
        self.findings.sessions_broken = list(broken.values())
        self.findings.keys = set(self.candidates)
        self.findings.scp03_broken = self._scp03()
        return self.findings
