"""``session``: the combined mode (mobility). One strong contact authentication (``session
start``: PIN, a challenge signed by the authentication key, the certificate checked to the root
with OCSP) binds the card's DESFire identity for a window; within it, ``session tap`` (a
contactless authentication) succeeds for that card only. A suspension or revocation seen in the
deny list ends the session."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cpsclient import contact, contactless, denylist
from cpsclient.errors import ClientError
from cpsclient.readers import open_reader

SESSION_FILE = "session.json"


@dataclass(frozen=True, slots=True)
class Session:
    uid: str
    card_number: str
    started_at: str
    expires_at: str


def _path(store: Path) -> Path:
    return store / SESSION_FILE


def session_load(store: Path) -> Session | None:
    path = _path(store)
    if not path.exists():
        return None
    return Session(**json.loads(path.read_text()))


def session_end(store: Path) -> bool:
    path = _path(store)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def session_bind(
    store: Path,
    *,
    contact_card_number: str,
    identity: contactless.ContactlessIdentity,
    deny: denylist.DenyList | None,
    window: dt.timedelta,
    now: dt.datetime,
) -> Session:
    """Bind the DESFire identity of the card whose contact authentication just succeeded: the
    identity record read in FULL mode must name the same card number."""
    if identity.card_number != contact_card_number:
        raise ClientError(
            f"the contactless card ({identity.card_number}) is not the card authenticated on "
            f"contact ({contact_card_number})"
        )
    reason = contactless.check(identity, deny)
    if reason is not None:
        raise ClientError(f"card {identity.card_number} refused: {reason}")
    session = Session(
        uid=identity.uid,
        card_number=identity.card_number,
        started_at=now.isoformat(),
        expires_at=(now + window).isoformat(),
    )
    path = _path(store)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(session)))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return session


def session_tap(
    store: Path,
    *,
    identity: contactless.ContactlessIdentity,
    deny: denylist.DenyList | None,
    now: dt.datetime,
) -> tuple[bool, str]:
    """(accepted, why) for one contactless tap within the session."""
    session = session_load(store)
    if session is None:
        return False, "no session: start one with a contact authentication"
    if dt.datetime.fromisoformat(session.expires_at) <= now:
        session_end(store)
        return False, "session expired: authenticate on contact again"
    if identity.uid != session.uid or identity.card_number != session.card_number:
        return False, "another card than the one of the session"
    reason = contactless.check(identity, deny)
    if reason is not None:
        session_end(store)
        return False, f"session ended: card {identity.card_number} {reason}"
    return True, f"card {identity.card_number} within its session until {session.expires_at}"


def _start(args: argparse.Namespace) -> int:
    store = denylist.store_dir(args.store)
    master = contactless.read_master(args.key_file)
    proof = contact.contact_auth_from_args(args)
    reader = open_reader(args.reader, contactless=True)
    try:
        identity = contactless.contactless_auth(reader, master=master)
    finally:
        reader.close()
    session = session_bind(
        store,
        contact_card_number=proof.card_number,
        identity=identity,
        deny=denylist.load(store),
        window=dt.timedelta(seconds=args.window),
        now=dt.datetime.now(dt.UTC),
    )
    print(f"SESSION card {session.card_number} (UID {session.uid}) until {session.expires_at}")
    return 0


def _tap(args: argparse.Namespace) -> int:
    store = denylist.store_dir(args.store)
    master = contactless.read_master(args.key_file)
    reader = open_reader(args.reader, contactless=True)
    try:
        identity = contactless.contactless_auth(reader, master=master)
    finally:
        reader.close()
    accepted, why = session_tap(
        store, identity=identity, deny=denylist.load(store), now=dt.datetime.now(dt.UTC)
    )
    print(("ACCEPTED " if accepted else "REFUSED ") + why)
    return 0 if accepted else 1


def _end(args: argparse.Namespace) -> int:
    ended = session_end(denylist.store_dir(args.store))
    print("session ended" if ended else "no session")
    return 0


def add_parser(subparsers: Any) -> None:
    top = subparsers.add_parser("session", help="contact authentication, then contactless taps")
    commands = top.add_subparsers(dest="session_command", required=True)
    start = commands.add_parser("start", help="contact-auth, then bind the DESFire identity")
    contact.add_contact_arguments(start)
    start.add_argument("--window", type=int, default=8 * 3600, help="seconds (default 8 h)")
    tap = commands.add_parser("tap", help="a contactless tap within the session")
    end = commands.add_parser("end", help="end the session")
    for parser in (start, tap):
        parser.add_argument("--key-file", required=True, help="the read master, 32 hex digits")
        parser.add_argument("--reader", help="part of the contactless reader's name")
    for parser, func in ((start, _start), (tap, _tap), (end, _end)):
        parser.add_argument("--store", help="local directory (default $CPSCLIENT_HOME)")
        parser.set_defaults(func=func)
