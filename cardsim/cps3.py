"""The CPS3 card: an IAS-ECC contact chip pre-personalized from the committed fixture.

Laid out as OpenSC's IAS-ECC driver records real CPx cards (docs/cardsim.md, "CPS3 facts"): EF.ATR
naming the IAS root, EF.DIR, the PKCS#15 application in DF 0001, TokenInfo with the supported
algorithms, keys 0x81 (signature) and 0x82 (authentication). Read-only for our purposes: no card
manager, lifecycle locked, certificates and keys from ``cardsim/fixtures`` (regenerate with
``python -m cardsim.fixtures.generate``).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from cardsim import contact, facts, pkcs15
from cardsim import rsa as rsa_ops
from cardsim.fs import AM_DELETE, AM_READ, AM_UPDATE, MF_FID, SC_ALWAYS, SC_NEVER, Node

FIXTURES = Path(__file__).parent / "fixtures"
AUTH_SLOT = facts.CPS3.key_slot("auth")
SIG_SLOT = facts.CPS3.key_slot("sign")
AUTH_KEY_REF = AUTH_SLOT.key_reference
SIG_KEY_REF = SIG_SLOT.key_reference
AUTH_CERT_FID = AUTH_SLOT.certificate_fid
SIG_CERT_FID = SIG_SLOT.certificate_fid
EF_ACTUA = facts.EF_ACTUA
EF_ATR_FID = facts.mf_file(facts.CPS3, "EF.ATR").fid
APPLICATION = facts.CPS3.contact.application
EF_ATR = bytes.fromhex(
    "804301B8460404B0ECC147039401804F088025000001FF0100E010020201040202010402020100020201"
    "00780806062B8122F8780282029000"
)
"""EF.ATR of a real CPx card (OpenSC commit fd83e885f, issue #2220): category indicator 80, card
service 43, pre-issuing data 46, capabilities 47, the IAS root AID 4F, IAS-ECC I/O buffer sizes E0
(send 0104, recv 0100), allocation scheme OID 78, status 82 9000."""
SFI_EF_ATR, SFI_EF_DIR = 0x1D, 0x1E  # IAS-ECC short identifiers (OpenSC iasecc.h)
READ_ONLY = {AM_READ: SC_ALWAYS, AM_UPDATE: SC_NEVER, AM_DELETE: SC_NEVER}


def holder() -> dict[str, Any]:
    """The fixture holder record (names, card number, validity, test PIN/PUK)."""
    data: dict[str, Any] = json.loads((FIXTURES / "cps3-holder.json").read_text())
    return data


def _ef(fid: int, content: bytes, sfi: int = 0) -> Node:
    return Node(
        fid=fid, df=False, size=len(content), data=bytearray(content), ac=dict(READ_ONLY), sfi=sfi
    )


def fixture_state() -> dict[str, Any]:
    """JSON-ready state of the pre-personalized CPS3 card."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from cardsim import tlv

    h = holder()
    serial = bytes.fromhex(h["serial"])
    mf = Node(
        fid=MF_FID,
        df=True,
        name=facts.CPS3.contact.applet_aid,
        ac={AM_READ: SC_ALWAYS, AM_UPDATE: SC_NEVER},
    )
    mf.add(_ef(EF_ATR_FID, EF_ATR, SFI_EF_ATR))
    ef_dir = pkcs15.ef_dir(APPLICATION.aid, "CPS3", APPLICATION.fid)
    mf.add(_ef(facts.EF_DIR, ef_dir, SFI_EF_DIR))
    mf.add(_ef(facts.EF_SN_ICC, serial))
    actua = tlv.encode(
        0xEC,
        tlv.encode(0x81, h["not_before"].replace("-", "").encode())
        + tlv.encode(0x82, h["not_after"].replace("-", "").encode()),
    )
    mf.add(_ef(EF_ACTUA, actua))
    df = Node(
        fid=APPLICATION.fid,
        df=True,
        name=APPLICATION.aid,
        ac={AM_READ: SC_ALWAYS, AM_UPDATE: SC_NEVER},
    )
    mf.add(df)
    # [O] key ids are the application AID followed by the key number; the signature key is for
    # nonRepudiation only, the authentication key for decrypt and sign.
    keys = [
        pkcs15.KeyEntry(
            AUTH_SLOT.label,
            APPLICATION.aid + bytes([AUTH_SLOT.pkcs15_id]),
            AUTH_KEY_REF,
            AUTH_CERT_FID,
            usage_sign=False,
        ),
        pkcs15.KeyEntry(
            SIG_SLOT.label,
            APPLICATION.aid + bytes([SIG_SLOT.pkcs15_id]),
            SIG_KEY_REF,
            SIG_CERT_FID,
            usage=b"\x06\x00\x40",
        ),
    ]
    auth_id = b"\x01"
    token = pkcs15.token_info(
        h["card_number"][-10:],
        "CPS3v3-" + h["card_number"][-10:],
        manufacturer="ASIP SANTE",
        read_only=True,
        algorithms=pkcs15.CPX_ALGORITHMS,
    )
    pin_path = (MF_FID,)  # [O] the PIN SDO is read from 3F00
    df.add(_ef(pkcs15.ODF_FID, pkcs15.odf()))
    df.add(_ef(pkcs15.TOKENINFO_FID, token))
    df.add(
        _ef(pkcs15.AODF_FID, pkcs15.aodf(contact.CPS3_PROFILE.user_pin_ref, auth_id, path=pin_path))
    )
    df.add(_ef(pkcs15.PRKDF_FID, pkcs15.prkdf(keys, auth_id)))
    df.add(_ef(pkcs15.CDF_FID, pkcs15.cdf(keys)))
    df.add(_ef(AUTH_CERT_FID, (FIXTURES / "cps3-auth.crt.der").read_bytes()))
    df.add(_ef(SIG_CERT_FID, (FIXTURES / "cps3-sig.crt.der").read_bytes()))
    slots = {}
    for ref, name in ((AUTH_KEY_REF, "auth"), (SIG_KEY_REF, "sig")):
        key = serialization.load_pem_private_key(
            (FIXTURES / f"cps3-{name}.key.pem").read_bytes(), password=None
        )
        assert isinstance(key, rsa.RSAPrivateKey)
        slots[ref] = contact.KeySlot(ref, rsa_ops.dump(key), contact.CPS3_PROFILE.user_pin_ref)
    pin = contact.PinObject.unset(facts.CPS3.pin, puk_ref=facts.CPS3_PUK.reference)
    puk = contact.PinObject.unset(facts.CPS3_PUK)
    pin.digest = contact.pin_digest(serial, pin.ref, h["test_pin"].encode())
    puk.digest = contact.pin_digest(serial, puk.ref, h["test_puk"].encode())
    state = contact.ContactState(
        serial=serial,
        lifecycle=contact.LC_LOCKED,
        kvn=0,
        key_enc=secrets.token_bytes(16),
        key_mac=secrets.token_bytes(16),
        key_dek=secrets.token_bytes(16),
        seq_counter=0,
        mf=mf,
        pins={pin.ref: pin, puk.ref: puk},
        keys=slots,
    )
    return {"format": 1, "product": "cps3", "contact": state.to_json(), "desfire": None}
