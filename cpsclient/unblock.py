"""``python -m cpsclient unblock``: offline PIN unblock with the helpdesk (docs/offline-unblock.md).

Shows the challenge to read to the helpdesk, reads the response the agent reads back and a new
PIN (twice, not echoed on a terminal; one line each from standard input otherwise), submits them
and says the outcome and the tries left. Between the challenge and the response nothing is sent
to the card (any command would discard the challenge).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from cards import crypto
from cards.errors import CardError, StatusWordError
from cards.iso7816 import IsoCard, check_verification
from cards.products import ADMIN_KEY_REFERENCE, PIN_REFERENCE
from cards.transport import transmit_apdu
from cards.unblock import challenge_apdu, format_code, new_pin_apdu, parse_code, response_apdu
from cpsclient.card import card_number_of, tries_left
from cpsclient.reader import PcscTransport, add_reader_argument, pick_reader

PIN_DIGITS = 4

REFUSALS = {
    0x6982: "the response is wrong (mistyped, or for another card or another challenge)",
    0x6983: "the card's unblock key is blocked (too many wrong responses): new codes are needed",
    0x6985: "the card no longer holds the challenge (it was reset); start again",
}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("unblock", help="offline PIN unblock with the helpdesk")
    add_reader_argument(parser)
    parser.set_defaults(handler=run)


def _say(text: str) -> None:
    print(text, flush=True)


def _line(prompt: str, *, secret: bool = False) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt) if secret else input(prompt)
    _say(prompt.rstrip())
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.strip()


def _response() -> bytes:
    while True:
        text = _line("Response read by the helpdesk: ")
        try:
            return parse_code(text)
        except ValueError:
            _say("That is not 16 hexadecimal digits (e.g. 1CBA-0C2A-33F3-EBC1); type it again.")


def _new_pin() -> bytes:
    while True:
        first = _line(f"New PIN ({PIN_DIGITS} digits): ", secret=True)
        if len(first) != PIN_DIGITS or not first.isdigit():
            _say(f"The PIN is {PIN_DIGITS} digits.")
            continue
        if _line("New PIN again: ", secret=True) != first:
            _say("The two PINs differ; type them again.")
            continue
        return first.encode()


def run(args: argparse.Namespace) -> int:
    try:
        transport = PcscTransport(pick_reader(args.reader))
    except CardError as exc:
        _say(f"error: {exc}")
        return 2
    card = IsoCard(transport)
    try:
        _say(f"card {card_number_of(card)}")
        pin_left = tries_left(card, PIN_REFERENCE)
        if pin_left is not None and pin_left > 0:
            _say(f"The PIN is not blocked ({pin_left} tries left); unblocking sets a new PIN.")
        challenge = card.send(challenge_apdu(), "GET CHALLENGE")
        if len(challenge) != crypto.UNBLOCK_CHALLENGE_LENGTH:
            _say("error: the card gave no 8-byte challenge")
            return 1
        _say(f"Challenge: {format_code(challenge)}")
        answer = _response()
        new_pin = _new_pin()
        reply = transmit_apdu(
            transport, response_apdu(answer, ADMIN_KEY_REFERENCE), "EXTERNAL AUTHENTICATE"
        )
        if reply.sw in REFUSALS:
            _say(f"Refused: {REFUSALS[reply.sw]}.")
            return 1
        check_verification(reply, "EXTERNAL AUTHENTICATE", "unblock response")
        card.send(new_pin_apdu(new_pin, PIN_REFERENCE), "RESET RETRY COUNTER")
        left = tries_left(card, PIN_REFERENCE)
        _say(
            f"PIN unblocked: the new PIN is set; PIN tries left: {left if left is not None else 3}."
        )
        return 0
    except EOFError:
        _say("Cancelled: nothing was sent to the card.")
        return 1
    except StatusWordError as exc:
        _say(f"Refused: {exc}")
        return 1
    except CardError as exc:
        _say(f"error: {exc}")
        return 1
    finally:
        transport.close()
