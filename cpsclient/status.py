"""``python -m cpsclient status``: the card number and the PIN and PUK tries left (no try used)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cards.errors import CardError
from cards.iso7816 import IsoCard
from cpsclient.card import pin_state
from cpsclient.reader import PcscTransport, add_reader_argument, pick_reader


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="PIN and PUK tries left, no try consumed")
    add_reader_argument(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object on standard output")
    parser.set_defaults(handler=run)


def _tries(value: int | None) -> str:
    if value is None:
        return "unknown"
    return "blocked" if value == 0 else str(value)


def run(args: argparse.Namespace) -> int:
    try:
        transport = PcscTransport(pick_reader(args.reader))
    except CardError as exc:
        print(f"error: {exc}")
        return 2
    try:
        state = pin_state(IsoCard(transport))
    except CardError as exc:
        print(f"error: {exc}")
        return 1
    finally:
        transport.close()
    if args.json:
        print(
            json.dumps(
                {
                    "card_number": state.card_number,
                    "pin_tries_left": state.pin_tries_left,
                    "puk_tries_left": state.puk_tries_left,
                }
            )
        )
    else:
        print(f"card {state.card_number}")
        print(f"PIN tries left: {_tries(state.pin_tries_left)}")
        print(f"PUK tries left: {_tries(state.puk_tries_left)}")
    return 0
