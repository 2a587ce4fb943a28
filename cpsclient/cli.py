"""``python -m cpsclient COMMAND``: each command module exposes ``add_parser(subparsers)`` and
sets the function that runs it (``args -> exit status``) on its parser, as ``func`` (the
verifier kit's commands) or ``handler`` (the holder's)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cpsclient import contact, contactless, denylist, identify, session, status, unblock
from cpsclient.errors import ClientError

COMMANDS = (unblock, status, denylist, identify, contactless, contact, session)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m cpsclient", description=__doc__)
    subparsers = top.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_parser(subparsers)
    return top


build_parser = parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    run = getattr(args, "func", None) or args.handler
    try:
        return int(run(args))
    except ClientError as exc:
        print(f"cpsclient: {exc}", file=sys.stderr)
        return 2
