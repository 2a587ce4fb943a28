"""The product facts the virtual cards take from the one definition in ``cards.products``.

Only data crosses over (ATRs, AIDs, references, sizes, tries): the file system, access rules and
counters stay the simulator's own code (DESIGN.md §2), so host and card share facts, not logic.
"""

from __future__ import annotations

from typing import TypeVar

from cards.products import CPS3, CPS4, ISSUER_PREFIX, EfSpec, PinPolicy, Product

__all__ = [
    "ADMIN_KEY_REF",
    "ADMIN_KEY_TRIES",
    "CARD_MANAGER_AID",
    "CHIPDOC_AID",
    "CPS3",
    "CPS3_PUK",
    "CPS4",
    "CPS4_PUK",
    "DESFIRE_ATR",
    "DESFIRE_SYSTEM_IDENTIFIER",
    "EF_ACTUA",
    "EF_DIR",
    "EF_SN_ICC",
    "ISSUER_PREFIX",
    "PKCS15_AID",
    "PKCS15_DF_FID",
    "SCP03_KEY_LENGTH",
    "SCP03_KVN",
    "mf_file",
    "pkcs15_file",
]

_T = TypeVar("_T")


def _defined(value: _T | None, what: str) -> _T:
    if value is None:
        raise LookupError(f"the product definition has no {what}")
    return value


def mf_file(product: Product, name: str) -> EfSpec:
    """The EF called ``name`` in the MF of ``product``; KeyError if there is none."""
    for ef in product.contact.mf_files:
        if ef.name == name:
            return ef
    raise KeyError(f"{product.name} has no MF file {name!r}")


def pkcs15_file(product: Product, name: str) -> EfSpec:
    """The EF called ``name`` in the PKCS#15 application DF of ``product``."""
    for ef in product.contact.application.files:
        if ef.name == name:
            return ef
    raise KeyError(f"{product.name} has no PKCS#15 file {name!r}")


CARD_MANAGER_AID = CPS4.contact.card_manager_aid
CHIPDOC_AID = CPS4.contact.applet_aid
PKCS15_AID = CPS4.contact.application.aid
PKCS15_DF_FID = CPS4.contact.application.fid

EF_SN_ICC = mf_file(CPS4, "EF.SN.ICC").fid
EF_DIR = mf_file(CPS4, "EF.DIR").fid
EF_ACTUA = mf_file(CPS4, "EF_ACTUA").fid

CPS4_PUK: PinPolicy = _defined(CPS4.puk, "CPS4 PUK")
CPS3_PUK: PinPolicy = _defined(CPS3.puk, "CPS3 PUK")
SCP03_KVN = _defined(CPS4.scp03, "CPS4 SCP03 profile").kvn
SCP03_KEY_LENGTH = _defined(CPS4.scp03, "CPS4 SCP03 profile").key_length
ADMIN_KEY_REF = _defined(CPS4.admin_key_reference, "CPS4 admin key reference")
ADMIN_KEY_TRIES = _defined(CPS4.admin_key_tries, "CPS4 admin key tries")

DESFIRE_ATR = _defined(CPS4.contactless_atr, "CPS4 contactless ATR")
DESFIRE_SYSTEM_IDENTIFIER = _defined(CPS4.desfire, "CPS4 DESFire").system_identifier
