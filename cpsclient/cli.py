"""The ``cpsclient`` command line: one sub-command per module, each exposing ``add_parser``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cpsclient import status, unblock

COMMANDS = (unblock, status)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cpsclient", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))
