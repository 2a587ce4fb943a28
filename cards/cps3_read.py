"""Reading a CPS3 handed in at delivery: its chip serial (``EF.SN.ICC``) and its two certificates.

Plain ISO 7816-4 reads, no PIN (the files are readable always): SELECT by path from the MF with
the FCP (for the file size), then READ BINARY in pieces.
"""

from __future__ import annotations

from dataclasses import dataclass

from cards.errors import CardError
from cards.iso7816 import parse_fcp, read_binary, select_path
from cards.products import CPS3, CPS3_APPLICATION_DF, EF_SN_ICC
from cards.transport import Transport, transmit_apdu

_CHUNK = 0xE0


@dataclass(frozen=True, slots=True)
class Cps3Contents:
    chip_serial: bytes
    certificates: dict[str, bytes]
    """DER certificates by slot (``auth``, ``sign``)."""


def _read_file(transport: Transport, path: tuple[int, ...], name: str) -> bytes:
    selected = transmit_apdu(transport, select_path(path, fcp=True), f"SELECT {name}")
    selected.check(f"SELECT {name}")
    size = parse_fcp(selected.data, f"SELECT {name}").size
    if size is None:
        raise CardError(f"{name}: the card gave no file size")
    data = b""
    while len(data) < size:
        part = transmit_apdu(
            transport, read_binary(len(data), min(_CHUNK, size - len(data))), f"READ {name}"
        ).check(f"READ {name}")
        if not part.data:
            break
        data += part.data
    return data


def read_cps3(transport: Transport) -> Cps3Contents:
    """The chip serial and the certificates of the CPS3 in the reader."""
    serial = _read_file(transport, (EF_SN_ICC,), "EF.SN.ICC")
    certificates = {}
    for slot in CPS3.key_slots:
        name = "sign" if slot.name in ("sign", "sig") else slot.name
        certificates[name] = _read_file(
            transport, (CPS3_APPLICATION_DF, slot.certificate_fid), f"certificate {name}"
        )
    return Cps3Contents(chip_serial=serial, certificates=certificates)
