"""``contactless-auth``: the simple contactless authentication. AuthenticateEV2First with key 1
of the CPS4 DESFire application, diversified for this card (AN10922: UID ‖ AID ‖ system id)
from the read master the relying party was given, then the identity record read in FULL mode
(encrypted and MACed: a cloned UID without the key gets nothing)."""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cards import tlv
from cards.crypto import an10922_diversify_aes128, an10922_input
from cards.desfire import CommMode, DesfireCard, aid_bytes
from cards.errors import CardError
from cards.products import CPS4_DESFIRE, DESFIRE_IDENTITY_FILE
from cards.transport import Transport
from cpsclient import denylist
from cpsclient.errors import ClientError
from cpsclient.identify import read_uid
from cpsclient.readers import open_reader

CARD_NUMBER_PREFIX = "8025000001"
READ_KEY = 1  # "contactless_auth" in cards.products.CPS4_DESFIRE


@dataclass(frozen=True, slots=True)
class ContactlessIdentity:
    uid: str
    national_id: str
    card_number: str
    valid_until: dt.date


def card_read_key(master: bytes, uid: bytes) -> bytes:
    """The card's key 1 from the relying party's read master (AN10922 AES-128)."""
    app = CPS4_DESFIRE
    return an10922_diversify_aes128(
        master, an10922_input(uid, aid_bytes(app.aid), app.system_identifier)
    )


def contactless_auth(transport: Transport, *, master: bytes) -> ContactlessIdentity:
    """Authenticate the card with its key 1 and read its identity record; a card that does not
    hold the key (a clone, a foreign card) fails here."""
    uid_hex = read_uid(transport)
    card = DesfireCard(transport)
    identity_file = next(f for f in CPS4_DESFIRE.files if f.file_no == DESFIRE_IDENTITY_FILE)
    try:
        card.select_application(CPS4_DESFIRE.aid)
        card.authenticate(READ_KEY, card_read_key(master, bytes.fromhex(uid_hex)))
        raw = card.read_data(DESFIRE_IDENTITY_FILE, 0, identity_file.size, CommMode.FULL)
        record, _ = tlv.decode_one(raw)
        fields = {tag: record.find(tag) for tag in (0x80, 0x81, 0x82)}
        if record.tag != 0xE1 or any(v is None for v in fields.values()):
            raise ClientError("the card's identity record is malformed")
        values = {tag: v.value.decode() for tag, v in fields.items() if v is not None}
        until = dt.date.fromisoformat(values[0x82])  # YYYYMMDD is ISO 8601 basic
    except (CardError, ValueError) as exc:
        raise ClientError(f"contactless authentication failed: {exc}") from None
    number = values[0x81]
    if len(number) == 10:  # the record keeps the printed part; the card number is the chip serial
        number = CARD_NUMBER_PREFIX + number
    return ContactlessIdentity(uid_hex, values[0x80], number, until)


def read_master(path: str) -> bytes:
    """The read master from a file: 32 hex digits (what the relying-party export unwraps to)."""
    try:
        master = bytes.fromhex(Path(path).read_text().strip())
    except (OSError, ValueError) as exc:
        raise ClientError(f"cannot read the key file: {exc}") from None
    if len(master) != 16:
        raise ClientError("the key file must hold an AES-128 key (32 hex digits)")
    return master


def check(identity: ContactlessIdentity, deny: denylist.DenyList | None) -> str | None:
    """Why the card must be refused (deny list, expiry), or ``None``."""
    if deny is not None:
        reason = deny.reason_for(uid=identity.uid, card=identity.card_number)
        if reason is not None:
            return reason
    if identity.valid_until < dt.datetime.now(dt.UTC).date():
        return "expired"
    return None


def _command(args: argparse.Namespace) -> int:
    master = read_master(args.key_file)
    deny = denylist.load(denylist.store_dir(args.store))
    reader = open_reader(args.reader, contactless=True)
    try:
        identity = contactless_auth(reader, master=master)
    finally:
        reader.close()
    reason = check(identity, deny)
    if reason is not None:
        print(f"REFUSED card {identity.card_number} (UID {identity.uid}): {reason}")
        return 1
    print(
        f"AUTHENTICATED card {identity.card_number} (UID {identity.uid}), "
        f"holder {identity.national_id}, valid until {identity.valid_until:%Y-%m-%d}"
    )
    return 0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "contactless-auth", help="DESFire EV2 authentication with key 1, identity in FULL mode"
    )
    parser.add_argument("--key-file", required=True, help="the read master, 32 hex digits")
    parser.add_argument("--reader", help="part of the contactless reader's name")
    parser.add_argument("--store", help="local directory (default $CPSCLIENT_HOME, ~/.cpsclient)")
    parser.set_defaults(func=_command)
