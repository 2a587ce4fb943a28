"""Shared by the PKI commands: application errors become command errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.core.management.base import CommandError

from core.errors import ApplicationError


@contextlib.contextmanager
def command_errors() -> Iterator[None]:
    try:
        yield
    except ApplicationError as exc:
        raise CommandError(f"{exc.message} ({type(exc).__name__})") from None
