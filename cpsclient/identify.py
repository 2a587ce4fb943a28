"""``identify``: the access-control use. Read the chip's UID on the contactless reader (PC/SC
``FF CA 00 00 00``) and check it against the local deny list; no key, no cryptography, so only
as strong as the UID (DESIGN.md §4: random UID is off for this)."""

from __future__ import annotations

import argparse
from typing import Any

from cards.transport import Transport
from cpsclient import denylist
from cpsclient.errors import ClientError
from cpsclient.readers import open_reader

GET_UID = bytes.fromhex("FFCA000000")


def read_uid(transport: Transport) -> str:
    response = transport.transmit(GET_UID)
    if len(response) < 2 or response[-2:] != b"\x90\x00":
        raise ClientError(f"the reader gave no UID (status {response[-2:].hex().upper()})")
    return response[:-2].hex().upper()


def identify(transport: Transport, deny: denylist.DenyList) -> tuple[str, str | None]:
    """(UID, deny reason or ``None`` when the card is accepted)."""
    uid = read_uid(transport)
    return uid, deny.reason_for(uid=uid)


def _command(args: argparse.Namespace) -> int:
    deny = denylist.load(denylist.store_dir(args.store))
    if deny is None:
        raise ClientError("no local deny list: run `cpsclient deny-list sync URL` first")
    reader = open_reader(args.reader, contactless=True)
    try:
        uid, reason = identify(reader, deny)
    finally:
        reader.close()
    if reason is not None:
        print(f"REFUSED {uid}: {reason} (deny list version {deny.version})")
        return 1
    print(f"ACCEPTED {uid} (deny list version {deny.version})")
    return 0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("identify", help="UID on the contactless reader vs. deny list")
    parser.add_argument("--reader", help="part of the contactless reader's name")
    parser.add_argument("--store", help="local directory (default $CPSCLIENT_HOME, ~/.cpsclient)")
    parser.set_defaults(func=_command)
