"""Mailer references: ``PM-NNNNNNNN-C``, a number from a PostgreSQL sequence and a Luhn digit,
short enough to type, checked so that a typo is caught rather than matched."""

from __future__ import annotations

import re

from cms.identifiers import luhn_valid

PREFIX = "PM"
_TYPED = re.compile(r"^PM-?(\d{8})-?(\d)$")


class MailerReferenceError(ValueError):
    """Text that is not a mailer reference (wrong shape or check digit)."""


def _check_digit(body: str) -> str:
    return next(d for d in "0123456789" if luhn_valid(body + d))


def reference_format(number: int) -> str:
    """The reference of the mailer numbered ``number`` (1 … 99,999,999)."""
    if not 0 < number < 10**8:
        raise ValueError(f"mailer number {number} is out of range")
    body = f"{number:08d}"
    return f"{PREFIX}-{body}-{_check_digit(body)}"


def reference_parse(text: str) -> str:
    """The canonical reference for what a scanner or an operator typed (case, spaces and
    hyphens forgiven); ``MailerReferenceError`` if it is not one."""
    compact = re.sub(r"[\s_]", "", text).upper()
    match = _TYPED.match(compact)
    if match is None:
        raise MailerReferenceError(f"{text!r} is not a mailer reference (PM-NNNNNNNN-C)")
    body, digit = match.groups()
    if _check_digit(body) != digit:
        raise MailerReferenceError(f"{text!r} fails its check digit: mistyped?")
    return f"{PREFIX}-{body}-{digit}"
