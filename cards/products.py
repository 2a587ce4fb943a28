"""Card products as pure data: the CPS4 definition (issued) and a minimal CPS3 one (legacy).

A product is a versioned, immutable definition read by the personalization programs, the virtual
card and the registry (which stores ``product.snapshot()`` with every issued card). Facts marked
[C] come from reference/cps.md, facts marked [O] from what OpenSC's IAS-ECC/CPx code and its issues
record of real CPx cards (docs/cardsim.md, "CPS3 facts"); everything else is our design (DESIGN.md
§4) and is written down here so that the host and the card side implement the same thing.

Non-standard command formats are spelled out in ``Cps4Apdus``; a blank card's state (what the
manufacturer put on it before personalization) is described in ``BlankCard``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

__all__ = [
    "CPS3",
    "CPS4",
    "PRODUCTS",
    "Access",
    "BlankCard",
    "ContactLayout",
    "Cps4Apdus",
    "DesfireApplication",
    "DesfireFile",
    "DesfireKey",
    "DfSpec",
    "EfSpec",
    "KeySlot",
    "PinPolicy",
    "Product",
    "Scp03Profile",
    "add_years",
    "card_number",
    "card_serial",
    "get_product",
    "registry_card_number",
    "serial_of_card_number",
]


class Access(Enum):
    """An access condition, with its compact-format security condition byte (ISO 7816-4 §5.3.3)."""

    ALWAYS = 0x00
    """Free."""
    PIN = 0x11
    """User authentication: the holder's PIN (b5 user auth, security environment 1)."""
    SM = 0x40
    """Only inside the SCP03 secure channel (issuer personalization and post-issuance)."""
    NEVER = 0xFF
    """Never."""


ACCESS_MODE_READ = 0x01
ACCESS_MODE_UPDATE = 0x02
ACCESS_MODE_DELETE = 0x40  # DELETE FILE (ISO: b7 "delete file (self)" for EFs and DFs)


@dataclass(frozen=True, slots=True)
class EfSpec:
    """A transparent EF: its FID, size, access conditions and what fills it."""

    name: str
    fid: int
    size: int
    read: Access
    update: Access
    content: str
    """What fills it: ``manufacturer`` (present on blank cards), ``pkcs15``, ``identity``,
    ``certificate:<slot>`` or ``actua``."""

    def security_attributes(self) -> bytes:
        """Compact security attributes: AM byte ``43`` then SC bytes for delete, update, read."""
        am = ACCESS_MODE_DELETE | ACCESS_MODE_UPDATE | ACCESS_MODE_READ
        return bytes([am, Access.SM.value, self.update.value, self.read.value])


@dataclass(frozen=True, slots=True)
class DfSpec:
    """A DF with an AID (DF name) and the EFs created inside it."""

    name: str
    fid: int
    aid: bytes
    files: tuple[EfSpec, ...]

    def security_attributes(self) -> bytes:
        """DF compact security attributes: AM ``43`` (delete self, create EF as "update", read)."""
        return bytes([ACCESS_MODE_DELETE | ACCESS_MODE_UPDATE | ACCESS_MODE_READ, 0x40, 0x40, 0x00])


@dataclass(frozen=True, slots=True)
class KeySlot:
    """An on-card RSA key pair and the certificate profile of its certificate."""

    name: str
    label: str
    key_reference: int
    algorithm: int
    """Algorithm identifier in ``80`` of the GENERATE CRT (``07`` = RSA-2048, as in PIV)."""
    modulus_bits: int
    public_exponent: int
    certificate_profile: str
    certificate_fid: int
    usage: str
    pkcs15_id: int


@dataclass(frozen=True, slots=True)
class PinPolicy:
    """A PIN or PUK: reference, length, alphabet and tries."""

    name: str
    reference: int
    min_length: int
    max_length: int
    tries: int
    digits_only: bool = True
    encoding: str = "ascii"
    """``ascii``: the digits as ASCII bytes, no padding (as OpenSC sends them)."""


@dataclass(frozen=True, slots=True)
class Scp03Profile:
    """How the issuer talks to the applet: key version, key length, security level, KDF."""

    kvn: int
    key_length: int
    security_level: int
    diversification: str
    """``gp-kdf3``: ``CMAC(master, i ‖ 00 00 00 ‖ type ‖ 00 ‖ KDD)`` (crypto.scp03_diversify_key),
    type 01 ENC, 02 MAC, 03 DEK; KDD = the 10 bytes returned by INITIALIZE UPDATE."""


@dataclass(frozen=True, slots=True)
class DesfireKey:
    """A DESFire application key and its purpose."""

    key_no: int
    name: str
    purpose: str
    version: int


@dataclass(frozen=True, slots=True)
class DesfireFile:
    """A DESFire standard data file."""

    file_no: int
    name: str
    size: int
    comm_mode: int
    read: int
    write: int
    read_write: int
    change: int
    content: str


@dataclass(frozen=True, slots=True)
class DesfireApplication:
    """The DESFire application of a product (our design, nothing public)."""

    aid: int
    ks1: int
    ks2: int
    keys: tuple[DesfireKey, ...]
    files: tuple[DesfireFile, ...]
    system_identifier: bytes
    """AN10922 system identifier: diversification input = UID(7) ‖ AID(3, LSB first) ‖ this."""
    picc_key_version: int
    picc_configuration: int
    """SetConfiguration option 00 byte: ``01`` FormatPICC disabled, random UID (``02``) off."""


@dataclass(frozen=True, slots=True)
class ContactLayout:
    """The contact chip: applet, channel, MF files and the PKCS#15 application DF."""

    atr: bytes
    applet_aid: bytes
    card_manager_aid: bytes
    channel: int
    mf_files: tuple[EfSpec, ...]
    application: DfSpec


@dataclass(frozen=True, slots=True)
class BlankCard:
    """What a blank card from stock holds before personalization (the manufacturer's part)."""

    description: str
    desfire_transport_key_version: int


@dataclass(frozen=True, slots=True)
class Cps4Apdus:
    """Command formats of the CPS4 program that ISO 7816 leaves open; the card side follows them.

    ``xx`` marks a variable byte. All commands from SELECT EF.SN.ICC on travel inside SCP03 (CLA
    with bit ``04``, C-MAC, C-ENC of the data) on the applet's logical channel.
    """

    select_applet: str = "01 A4 04 0C 08 <applet AID>  (opens logical channel 1)"
    read_serial: str = "01 A4 08 0C 02 D003, then 01 B0 00 00 0A → 10-byte EF.SN.ICC"
    create_file: str = (
        "00 E0 00 00 Lc 62{80 size(2), 82 01 01|38, 83 FID(2), [84 AID], 8A 01 lcs, 8C AM SC…}"
        "; the created file becomes current; CREATE of a DF selects it"
    )
    generate_key_pair: str = (
        "00 47 00 00 09 AC 06 80 01 07 84 01 <keyref> 00 → 7F49{81 n, 82 e}"
        " (longer than 256 bytes with SM: answered 61 xx, fetched with GET RESPONSE)"
    )
    set_pin: str = "00 24 01 <PIN ref> Lc <ASCII digits>  (CHANGE REFERENCE DATA, new data only)"
    set_puk: str = "00 24 01 <PUK ref> Lc <ASCII digits>"
    set_admin_key: str = "00 24 01 <admin key ref> 11 <KV(1)> <AES-128 key(16)>"
    close_lifecycle: str = (
        "00 A4 00 0C 02 3F00 then 00 44 00 00 (ACTIVATE FILE on the MF): from then on the applet "
        "refuses CREATE FILE, DELETE FILE, GENERATE and CHANGE REFERENCE DATA P1 01 of the admin "
        "key with 69 85 (P1 01 of PIN and PUK stays open inside SCP03 with C-ENC: new codes); "
        "ACTIVATE FILE again is answered 90 00 (no change), so a resumed session can repeat it"
    )
    unblock_challenge: str = "00 84 00 00 08 → challenge(8), bound to the admin key"
    unblock_response: str = "00 82 00 <admin key ref> 08 <response(8)> → 90 00 | 69 82 | 69 83"
    unblock_new_pin: str = "00 2C 02 <PIN ref> Lc <new PIN>  (after the EXTERNAL AUTHENTICATE)"
    desfire_uid: str = "FF CA 00 00 00 → UID(7) 90 00 (PC/SC GET DATA, answered by the card side)"


@dataclass(frozen=True, slots=True)
class Product:
    """A versioned card product definition."""

    name: str
    version: int
    chip: str
    validity_years: int
    issued: bool
    contact: ContactLayout
    key_slots: tuple[KeySlot, ...]
    pin: PinPolicy
    puk: PinPolicy | None
    admin_key_reference: int | None
    admin_key_version: int | None
    scp03: Scp03Profile | None
    desfire: DesfireApplication | None
    contactless_atr: bytes | None
    blank: BlankCard | None
    apdus: Cps4Apdus | None = None
    admin_key_tries: int | None = None
    """Wrong offline-unblock responses accepted before the admin key blocks (``69 83``)."""

    def key_slot(self, name: str) -> KeySlot:
        """The key slot called ``name``; KeyError if there is none."""
        for slot in self.key_slots:
            if slot.name == name:
                return slot
        raise KeyError(f"{self.name} has no key slot {name!r}")

    def snapshot(self) -> dict[str, Any]:
        """A JSON-serializable copy for the registry (bytes as upper-case hex, enums by name)."""
        snapshot: dict[str, Any] = _jsonable(dataclasses.asdict(self))
        return snapshot


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex().upper()
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------------
# CPS4
# ------------------------------------------------------------------------------------------------

CPS4_APPLET_AID = bytes.fromhex("8025000001FF0100")
CPS4_CARD_MANAGER_AID = bytes.fromhex("A0000001510000")
PKCS15_AID = bytes.fromhex("E828BD080F8025000001FF0010")
CPS4_ATR = bytes.fromhex("3B9B188001001225006480040100009044")
DESFIRE_ATR = bytes.fromhex("3B8180018080")

PIN_REFERENCE = 0x81
PUK_REFERENCE = 0x82
ADMIN_KEY_REFERENCE = 0x8A
AUTH_KEY_REFERENCE = 0x01
SIGN_KEY_REFERENCE = 0x02
RSA_2048 = 0x07

EF_SN_ICC = 0xD003
EF_ACTUA = 0xD010
EF_DIR = 0x2F00
PKCS15_DF = 0x5015
CERT_AUTH_FID = 0xC000
CERT_SIGN_FID = 0xC001
CERT_EF_SIZE = 0x0800

DATA_OBJECT_FIDS: dict[str, int] = {
    "CPS_ID_CARD": 0xD101,
    "CPS_NAME_PS": 0xD102,
    "CPS_LANG_PS": 0xD103,
    "CPS_INFO_PS": 0xD104,
    "CPS_DATA": 0xD105,
    **{f"CPS_ACTIVITY_{i:02d}_PS": 0xD110 + i - 1 for i in range(1, 17)},
    "CPS_SIT_FACT": 0xD120,
}
"""[C] names (reference/cps.md §2); the FIDs are ours."""

_FREE_DATA_OBJECTS = ("CPS_ID_CARD", "CPS_NAME_PS", "CPS_LANG_PS", "CPS_INFO_PS")


def _data_object_files() -> tuple[EfSpec, ...]:
    files = [
        EfSpec(n, DATA_OBJECT_FIDS[n], 0x80, Access.ALWAYS, Access.SM, "identity")
        for n in _FREE_DATA_OBJECTS
    ]
    files.append(
        EfSpec(
            "CPS_DATA", DATA_OBJECT_FIDS["CPS_DATA"], 0x100, Access.ALWAYS, Access.PIN, "identity"
        )
    )
    files += [
        EfSpec(name, fid, 0x80, Access.PIN, Access.SM, "identity")
        for name, fid in DATA_OBJECT_FIDS.items()
        if name.startswith("CPS_ACTIVITY_") or name == "CPS_SIT_FACT"
    ]
    return tuple(files)


CPS4_KEY_SLOTS = (
    KeySlot(
        name="auth",
        label="CPS_PRIV_AUT",
        key_reference=AUTH_KEY_REFERENCE,
        algorithm=RSA_2048,
        modulus_bits=2048,
        public_exponent=65537,
        certificate_profile="cps_auth",
        certificate_fid=CERT_AUTH_FID,
        usage="authentication",
        pkcs15_id=0x01,
    ),
    KeySlot(
        name="sign",
        label="CPS_PRIV_SIG",
        key_reference=SIGN_KEY_REFERENCE,
        algorithm=RSA_2048,
        modulus_bits=2048,
        public_exponent=65537,
        certificate_profile="cps_sign",
        certificate_fid=CERT_SIGN_FID,
        usage="signature",
        pkcs15_id=0x02,
    ),
)

CPS4_CONTACT = ContactLayout(
    atr=CPS4_ATR,
    applet_aid=CPS4_APPLET_AID,
    card_manager_aid=CPS4_CARD_MANAGER_AID,
    channel=1,
    mf_files=(
        EfSpec("EF.SN.ICC", EF_SN_ICC, 10, Access.ALWAYS, Access.NEVER, "manufacturer"),
        EfSpec("EF.DIR", EF_DIR, 0x40, Access.ALWAYS, Access.SM, "pkcs15"),
        EfSpec("EF_ACTUA", EF_ACTUA, 0x20, Access.ALWAYS, Access.SM, "actua"),
    ),
    application=DfSpec(
        name="PKCS15",
        fid=PKCS15_DF,
        aid=PKCS15_AID,
        files=(
            EfSpec("EF.ODF", 0x5031, 0x40, Access.ALWAYS, Access.SM, "pkcs15"),
            EfSpec("EF.TokenInfo", 0x5032, 0x60, Access.ALWAYS, Access.SM, "pkcs15"),
            EfSpec("EF.AODF", 0x4401, 0x80, Access.ALWAYS, Access.SM, "pkcs15"),
            EfSpec("EF.PrKDF", 0x4402, 0x100, Access.ALWAYS, Access.SM, "pkcs15"),
            EfSpec("EF.CDF", 0x4404, 0x100, Access.ALWAYS, Access.SM, "pkcs15"),
            EfSpec(
                "EF.CERT_AUTH",
                CERT_AUTH_FID,
                CERT_EF_SIZE,
                Access.ALWAYS,
                Access.SM,
                "certificate:auth",
            ),
            EfSpec(
                "EF.CERT_SIGN",
                CERT_SIGN_FID,
                CERT_EF_SIZE,
                Access.ALWAYS,
                Access.SM,
                "certificate:sign",
            ),
            *_data_object_files(),
        ),
    ),
)

DESFIRE_AID = 0x435053  # "CPS" read MSB first; on the wire 53 50 43
DESFIRE_IDENTITY_FILE = 1
DESFIRE_ACCESS_FILE = 2

CPS4_DESFIRE = DesfireApplication(
    aid=DESFIRE_AID,
    ks1=0x0B,  # key 0 changes keys, configuration changeable, free listing, master key changeable
    ks2=0x83,  # AES, 3 keys, no ISO file identifiers
    keys=(
        DesfireKey(0, "app_master", "application master key (issuer only)", 1),
        DesfireKey(1, "contactless_auth", "simple contactless authentication of the holder", 1),
        DesfireKey(2, "access_control", "building/parking/canteen readers", 1),
    ),
    files=(
        DesfireFile(
            DESFIRE_IDENTITY_FILE, "identity_record", 96, 0x03, 1, 0, 0, 0, "identity_record"
        ),
        DesfireFile(
            DESFIRE_ACCESS_FILE, "access_credential", 32, 0x03, 2, 0, 0, 0, "access_credential"
        ),
    ),
    system_identifier=b"ANS-CPS4",
    picc_key_version=1,
    picc_configuration=0x01,
)

CPS4 = Product(
    name="CPS4",
    version=1,
    chip="NXP ChipDoc-like applet (contact, ISO 7816-4/-8/-15) + MIFARE DESFire EV2 (contactless)",
    validity_years=6,
    issued=True,
    contact=CPS4_CONTACT,
    key_slots=CPS4_KEY_SLOTS,
    pin=PinPolicy("PIN", PIN_REFERENCE, 4, 4, 3),
    puk=PinPolicy("PUK", PUK_REFERENCE, 8, 8, 10),
    admin_key_reference=ADMIN_KEY_REFERENCE,
    admin_key_version=1,
    scp03=Scp03Profile(kvn=0x30, key_length=16, security_level=0x33, diversification="gp-kdf3"),
    desfire=CPS4_DESFIRE,
    contactless_atr=DESFIRE_ATR,
    blank=BlankCard(
        description=(
            "MF with EF.SN.ICC (3F00/D003, 10 bytes: 80 25 00 00 01 ‖ card number in BCD); applet "
            f"{CPS4_APPLET_AID.hex().upper()} installed, SCP03 keys (KVN 30) diversified from the "
            "issuer master by the card's KDD; nothing else in the MF. DESFire: empty PICC, PICC "
            "master key = the batch transport key (AES), random UID off, FormatPICC enabled."
        ),
        desfire_transport_key_version=0,
    ),
    apdus=Cps4Apdus(),
    admin_key_tries=10,
)

# ------------------------------------------------------------------------------------------------
# CPS3 (legacy: read by stations for migration, never issued)
# ------------------------------------------------------------------------------------------------

CPX_ROOT_AID = bytes.fromhex("8025000001FF0100")
"""[O] The IAS root AID a CPx card names in its EF.ATR (docs/cardsim.md, "CPS3 facts")."""
CPS3_APPLICATION_DF = 0x0001
"""[O] The contact IAS application DF of a CPx (SDOs read from 3F00/0001 by OpenSC)."""

CPS3 = Product(
    name="CPS3",
    version=1,
    chip="IAS-ECC 1.0.1 (Oberthur)",
    validity_years=3,
    issued=False,
    contact=ContactLayout(
        atr=bytes.fromhex("3BAC00402A001225006480000310009000"),
        applet_aid=CPX_ROOT_AID,
        card_manager_aid=b"",
        channel=0,
        mf_files=(
            EfSpec("EF.SN.ICC", EF_SN_ICC, 10, Access.ALWAYS, Access.NEVER, "manufacturer"),
            EfSpec("EF.ATR", 0x2F01, 0x39, Access.ALWAYS, Access.NEVER, "manufacturer"),
            EfSpec("EF.DIR", EF_DIR, 0x65, Access.ALWAYS, Access.NEVER, "pkcs15"),
        ),
        application=DfSpec(
            name="PKCS15",
            fid=CPS3_APPLICATION_DF,
            aid=PKCS15_AID,
            files=(
                EfSpec("EF.ODF", 0x5031, 0x40, Access.ALWAYS, Access.NEVER, "pkcs15"),
                EfSpec("EF.TokenInfo", 0x5032, 0x100, Access.ALWAYS, Access.NEVER, "pkcs15"),
            ),
        ),
    ),
    # [O] The legacy cards keep their certificates in 4001/4002; their PrKDF names the
    # authentication key 0x82 (PKCS#15 id AID ‖ 02) and the signature key 0x81 (AID ‖ 01).
    key_slots=(
        dataclasses.replace(
            CPS4_KEY_SLOTS[0],
            algorithm=0x00,
            key_reference=0x82,
            pkcs15_id=0x02,
            certificate_fid=0x4001,
        ),
        dataclasses.replace(
            CPS4_KEY_SLOTS[1],
            algorithm=0x00,
            key_reference=0x81,
            pkcs15_id=0x01,
            certificate_fid=0x4002,
        ),
    ),
    pin=PinPolicy("PIN", PIN_REFERENCE, 4, 4, 3),
    puk=PinPolicy("PUK", PUK_REFERENCE, 8, 8, 10),
    admin_key_reference=None,
    admin_key_version=None,
    scp03=None,
    desfire=None,
    contactless_atr=bytes.fromhex("3B 8F 80 01 00 31 B8 64 04 B0 EC C1 73 94 01 80 82 90 00 0E"),
    blank=None,
)

PRODUCTS: dict[tuple[str, int], Product] = {(p.name, p.version): p for p in (CPS4, CPS3)}


ISSUER_PREFIX = bytes.fromhex("8025000001")
"""[C] ANS's IAS issuer number, the first 5 bytes of EF.SN.ICC."""


def card_serial(card_number: str) -> bytes:
    """EF.SN.ICC content for a 10-digit card number: ``80 25 00 00 01`` ‖ the digits in BCD."""
    if len(card_number) != 10 or not card_number.isdigit() or not card_number.isascii():
        raise ValueError(f"card number {card_number!r} is not 10 digits")
    return ISSUER_PREFIX + bytes.fromhex(card_number)


def card_number(serial: bytes) -> str:
    """The 10-digit card number printed in certificates (``8025000001/<number>``) from EF.SN.ICC."""
    digits = serial[5:].hex()
    if len(serial) != 10 or serial[:5] != ISSUER_PREFIX or not digits.isdigit():
        raise ValueError(f"EF.SN.ICC {serial.hex().upper()} is not 80 25 00 00 01 + 10 BCD digits")
    return digits


def registry_card_number(serial: bytes) -> str:
    """The card number the agency keeps and prints (registry, card body, PIN mailer, deny list):
    ANS's issuer number followed by the card number of EF.SN.ICC, 20 digits, the chip's serial
    itself (docs/adr/0012-card-number.md). ValueError for a serial that is no CPS EF.SN.ICC."""
    return ISSUER_PREFIX.hex() + card_number(serial)


def serial_of_card_number(number: str) -> bytes:
    """EF.SN.ICC of a registry card number (the inverse of ``registry_card_number``)."""
    issuer = ISSUER_PREFIX.hex()
    if len(number) != 20 or not number.startswith(issuer):
        raise ValueError(f"card number {number!r} is not {issuer} + 10 digits")
    return card_serial(number[len(issuer) :])


_Day = TypeVar("_Day", dt.date, dt.datetime)


def add_years(day: _Day, years: int) -> _Day:
    """``day`` moved on by ``years`` calendar years (29 February → 28 February): the one rule for
    every validity period, the card's (EF_ACTUA), the registry's expiry and the certificates'."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def get_product(name: str, version: int) -> Product:
    """The product definition called ``name`` at ``version``; KeyError naming both otherwise."""
    try:
        return PRODUCTS[(name, version)]
    except KeyError:
        raise KeyError(f"no card product {name} version {version}") from None
