"""The CPS3 card: an IAS-ECC-like contact chip pre-personalized from the committed fixture.

Read-only for our purposes: no card manager, lifecycle locked, certificates and keys from
``cardsim/fixtures`` (regenerate with ``python -m cardsim.fixtures.generate``).
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
READ_ONLY = {AM_READ: SC_ALWAYS, AM_UPDATE: SC_NEVER, AM_DELETE: SC_NEVER}


def holder() -> dict[str, Any]:
    """The fixture holder record (names, card number, validity, test PIN/PUK)."""
    data: dict[str, Any] = json.loads((FIXTURES / "cps3-holder.json").read_text())
    return data


def _ef(fid: int, content: bytes) -> Node:
    return Node(fid=fid, df=False, size=len(content), data=bytearray(content), ac=dict(READ_ONLY))


def fixture_state() -> dict[str, Any]:
    """JSON-ready state of the pre-personalized CPS3 card."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from cardsim import tlv

    h = holder()
    serial = bytes.fromhex(h["serial"])
    mf = Node(fid=MF_FID, df=True, ac={AM_READ: SC_ALWAYS, AM_UPDATE: SC_NEVER})
    mf.add(_ef(facts.EF_DIR, pkcs15.ef_dir(facts.CPS3.contact.application.aid, "CPS3")))
    mf.add(_ef(facts.EF_SN_ICC, serial))
    actua = tlv.encode(
        0xEC,
        tlv.encode(0x81, h["not_before"].replace("-", "").encode())
        + tlv.encode(0x82, h["not_after"].replace("-", "").encode()),
    )
    mf.add(_ef(EF_ACTUA, actua))
    df = Node(
        fid=facts.CPS3.contact.application.fid,
        df=True,
        name=facts.CPS3.contact.application.aid,
        ac={AM_READ: SC_ALWAYS, AM_UPDATE: SC_NEVER},
    )
    mf.add(df)
    keys = [
        pkcs15.KeyEntry(
            AUTH_SLOT.label,
            bytes([AUTH_SLOT.pkcs15_id]),
            AUTH_KEY_REF,
            AUTH_CERT_FID,
            usage_sign=False,
        ),
        pkcs15.KeyEntry(SIG_SLOT.label, bytes([SIG_SLOT.pkcs15_id]), SIG_KEY_REF, SIG_CERT_FID),
    ]
    auth_id = b"\x01"
    df.add(_ef(pkcs15.ODF_FID, pkcs15.odf()))
    df.add(_ef(pkcs15.TOKENINFO_FID, pkcs15.token_info(h["card_number"][-10:], "CPS3")))
    df.add(_ef(pkcs15.AODF_FID, pkcs15.aodf(contact.CPS3_PROFILE.user_pin_ref, auth_id)))
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
