"""``python -m cpsclient COMMAND``: each command module exposes ``add_parser(subparsers)`` and
sets ``func`` (``args -> exit status``) on its parser."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cpsclient import contact, contactless, denylist, identify, session
from cpsclient.errors import ClientError

COMMANDS = (denylist, identify, contactless, contact, session)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="cpsclient", description=__doc__)
    subparsers = top.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_parser(subparsers)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ClientError as exc:
        print(f"cpsclient: {exc}", file=sys.stderr)
        return 2
