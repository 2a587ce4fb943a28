"""A secret value (PIN, PUK) that never shows itself in a repr, a log line or a traceback."""

from __future__ import annotations

import secrets


class Secret:
    """A PIN or PUK: its repr and str never show the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The clear value, for the one place that needs it (the APDU inside SCP03)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(
            self._value.encode(), other._value.encode()
        )

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))
