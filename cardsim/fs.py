"""ISO 7816-4 file system of the contact chip: DFs, transparent EFs, FCP and access conditions.

Access conditions use the compact security-attribute form (FCP tag ``8C``): an access-mode byte
whose bits name operations, followed by one security-condition byte per bit set, from b7 down to
b1. Operations: b1 READ (EF) / DELETE CHILD (DF), b2 UPDATE (EF) / CREATE EF (DF), b3 CREATE DF,
b7 DELETE self. Security-condition byte: ``00`` always, ``FF`` never, otherwise ``b7`` (0x40)
secure messaging (an SCP03 session), ``b5`` (0x10) user authentication with the PIN whose reference
is the low nibble; ``b8`` (0x80) set means all listed conditions, clear means any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cardsim import tlv

AM_READ = 0x01
AM_UPDATE = 0x02
AM_CREATE_DF = 0x04
AM_DELETE = 0x40

SC_ALWAYS = 0x00
SC_NEVER = 0xFF
SC_SM = 0x40
SC_PIN = 0x10

DEFAULT_EF_AC = {AM_READ: SC_ALWAYS, AM_UPDATE: SC_SM, AM_DELETE: SC_SM}
DEFAULT_DF_AC = {AM_READ: SC_SM, AM_UPDATE: SC_SM, AM_CREATE_DF: SC_SM, AM_DELETE: SC_SM}

MF_FID = 0x3F00
MAX_EF_SIZE = 0x7FFF


@dataclass
class Node:
    """A DF (``df=True``) or a transparent EF."""

    fid: int
    df: bool
    name: bytes = b""
    size: int = 0
    data: bytearray = field(default_factory=bytearray, repr=False)
    sfi: int = 0
    ac: dict[int, int] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list, repr=False)
    parent: Node | None = field(default=None, repr=False, compare=False)

    def child(self, fid: int) -> Node | None:
        """Direct child with this FID."""
        return next((c for c in self.children if c.fid == fid), None)

    def add(self, node: Node) -> None:
        """Attach a child node."""
        node.parent = self
        self.children.append(node)

    def path(self) -> list[int]:
        """FIDs from the MF down to this node."""
        out: list[int] = []
        node: Node | None = self
        while node is not None:
            out.append(node.fid)
            node = node.parent
        return out[::-1]

    def find_by_name(self, name: bytes) -> Node | None:
        """Depth-first search of a DF by its name (AID)."""
        if self.df and self.name == name:
            return self
        for c in self.children:
            if c.df:
                found = c.find_by_name(name)
                if found is not None:
                    return found
        return None

    def used_bytes(self) -> int:
        """Memory used by this subtree (file bodies plus a fixed overhead per node)."""
        return 32 + self.size + sum(c.used_bytes() for c in self.children)

    def condition(self, mode: int) -> int:
        """Security condition of an operation, with the defaults when the FCP named none."""
        default = DEFAULT_DF_AC if self.df else DEFAULT_EF_AC
        return self.ac.get(mode, default.get(mode, SC_NEVER))

    def fcp(self) -> bytes:
        """File control parameters (``62``) answered by SELECT."""
        body = b""
        if not self.df:
            body += tlv.encode(0x80, self.size.to_bytes(2, "big"))
            body += tlv.encode(0x82, b"\x01")
        else:
            body += tlv.encode(0x82, b"\x38")
        body += tlv.encode(0x83, self.fid.to_bytes(2, "big"))
        if self.df and self.name:
            body += tlv.encode(0x84, self.name)
        if self.sfi:
            body += tlv.encode(0x88, bytes([self.sfi << 3]))
        body += tlv.encode(0x8A, b"\x05")
        body += tlv.encode(0x8C, compact_attributes(self.ac))
        return tlv.encode(0x62, body)

    def to_json(self) -> dict[str, Any]:
        """Plain data for the state file."""
        out: dict[str, Any] = {"fid": self.fid, "df": self.df}
        if self.name:
            out["name"] = self.name.hex()
        if self.sfi:
            out["sfi"] = self.sfi
        out["ac"] = {str(k): v for k, v in sorted(self.ac.items())}
        if self.df:
            out["children"] = [c.to_json() for c in self.children]
        else:
            out["size"] = self.size
            out["data"] = bytes(self.data).hex()
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Node:
        """Inverse of ``to_json``."""
        node = cls(
            fid=int(raw["fid"]),
            df=bool(raw["df"]),
            name=bytes.fromhex(raw.get("name", "")),
            size=int(raw.get("size", 0)),
            data=bytearray(bytes.fromhex(raw.get("data", ""))),
            sfi=int(raw.get("sfi", 0)),
            ac={int(k): int(v) for k, v in raw.get("ac", {}).items()},
        )
        for c in raw.get("children", []):
            node.add(cls.from_json(c))
        return node


def compact_attributes(ac: dict[int, int]) -> bytes:
    """Encode an access-condition map in the compact form (AM byte + SC bytes, b7 first)."""
    am = 0
    scs = b""
    for bit in range(6, -1, -1):
        mode = 1 << bit
        if mode in ac:
            am |= mode
            scs += bytes([ac[mode]])
    return bytes([am]) + scs


def parse_compact_attributes(raw: bytes) -> dict[int, int]:
    """Decode the compact form; ValueError when the SC bytes do not match the AM byte."""
    if not raw:
        raise ValueError("empty security attributes")
    am = raw[0]
    out: dict[int, int] = {}
    pos = 1
    for bit in range(6, -1, -1):
        mode = 1 << bit
        if am & mode:
            if pos >= len(raw):
                raise ValueError("missing security condition")
            out[mode] = raw[pos]
            pos += 1
    if pos != len(raw) or am & 0x80:
        raise ValueError("unexpected security attribute bytes")
    return out


def node_from_fcp(fcp: bytes) -> Node:
    """Build a new file from a CREATE FILE FCP template; ValueError when it is not acceptable."""
    items = tlv.parse(fcp)
    if len(items) != 1 or items[0][0] != 0x62:
        raise ValueError("FCP template 62 expected")
    fields = dict(tlv.parse(items[0][1]))
    descriptor = fields.get(0x82)
    fid_raw = fields.get(0x83)
    if not descriptor or fid_raw is None or len(fid_raw) != 2:
        raise ValueError("file descriptor and identifier required")
    fid = int.from_bytes(fid_raw, "big")
    if fid in (MF_FID, 0x3FFF, 0xFFFF):
        raise ValueError("reserved file identifier")
    ac = parse_compact_attributes(fields[0x8C]) if 0x8C in fields else {}
    sfi_raw = fields.get(0x88, b"")
    sfi = (sfi_raw[0] >> 3) if len(sfi_raw) == 1 else 0
    if descriptor[0] == 0x38:
        name = fields.get(0x84, b"")
        if len(name) > 16:
            raise ValueError("DF name longer than 16 bytes")
        return Node(fid=fid, df=True, name=name, ac=ac, sfi=0)
    if descriptor[0] == 0x01:
        size_raw = fields.get(0x80) or fields.get(0x81)
        if size_raw is None or not 1 <= len(size_raw) <= 2:
            raise ValueError("EF size required")
        size = int.from_bytes(size_raw, "big")
        if size == 0 or size > MAX_EF_SIZE:
            raise ValueError("EF size out of range")
        return Node(fid=fid, df=False, size=size, data=bytearray(size), ac=ac, sfi=sfi)
    raise ValueError("only transparent EFs and DFs are supported")


def ac_satisfied(sc: int, *, secure: bool, verified_pins: set[int]) -> bool:
    """Evaluate one security-condition byte against the current security status."""
    if sc == SC_ALWAYS:
        return True
    if sc == SC_NEVER:
        return False
    results: list[bool] = []
    if sc & SC_SM:
        results.append(secure)
    if sc & SC_PIN:
        results.append((sc & 0x0F) in verified_pins)
    if not results:
        return False
    return all(results) if sc & 0x80 else any(results)
