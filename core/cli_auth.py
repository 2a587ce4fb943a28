"""Authenticated people on the command line: a management command that acts for a person names
them (``--officer alice``) and reads their password from the terminal, or from standard input,
one line per person, when it is not a terminal (scripts, tests). The password is checked with
``django.contrib.auth.authenticate`` and the account must hold the role the act needs.

Nothing read here is echoed, logged or kept: only the account comes back.
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from typing import IO

from django.contrib.auth import authenticate
from django.contrib.auth.models import AbstractBaseUser

from core.errors import BadInput, Forbidden
from core.roles import Role, roles_of

__all__ = ["officer_authenticate", "officers_authenticate"]


def _password(username: str, stdin: IO[str] | None) -> str:
    stream = stdin
    if stream is None or stream.isatty():
        return getpass.getpass(f"password of {username}: ")
    line = stream.readline()
    if not line:
        raise BadInput(f"No password given for {username} on standard input.")
    return line.rstrip("\r\n")


def officer_authenticate(
    *, username: str, role: Role = Role.SECURITY_OFFICER, stdin: IO[str] | None = None
) -> AbstractBaseUser:
    """The active account ``username`` after its password was checked, holding ``role``."""
    username = username.strip()
    if not username:
        raise BadInput("Name the person who acts (--officer).")
    password = _password(username, stdin)
    user = authenticate(username=username, password=password)
    # one message for an unknown account and a wrong password
    if user is None or not user.is_active:
        raise Forbidden(f"Authentication failed for {username}.")
    if role not in roles_of(user):
        raise Forbidden(f"{username} is not a {role.label.lower()}.")
    return user


def officers_authenticate(
    *,
    usernames: Sequence[str],
    count: int,
    role: Role = Role.SECURITY_OFFICER,
    stdin: IO[str] | None = None,
) -> list[AbstractBaseUser]:
    """``count`` different people, each authenticated and holding ``role`` (dual control)."""
    names = [u.strip() for u in usernames if u.strip()]
    if len(names) != count:
        raise BadInput(f"This act needs {count} officers: name each with --officer.")
    if len(set(names)) != count:
        raise Forbidden("This act needs different people: an officer cannot count twice.")
    return [officer_authenticate(username=name, role=role, stdin=stdin) for name in names]
