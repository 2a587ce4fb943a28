"""Application errors: what services raise when a user must see why something was refused.

One exception handler (``api.exceptions``) renders them as ``{"message": ..., "extra": {...}}`` with
the HTTP status each class carries (DESIGN.md §8).
"""

from __future__ import annotations

from typing import Any, ClassVar


class ApplicationError(Exception):
    """A refusal a user can act on. ``message`` says what was wrong and what to do."""

    status_code: ClassVar[int] = 400

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra: dict[str, Any] = extra or {}


class BadInput(ApplicationError):
    status_code = 400


class Forbidden(ApplicationError):
    status_code = 403


class NotFound(ApplicationError):
    status_code = 404


class Conflict(ApplicationError):
    """The object is not in a state that allows the action (invalid transition, duplicate)."""

    status_code = 409


class PolicyViolation(ApplicationError):
    """Well-formed input that a policy refuses (certificate profile, PIN policy, dual control)."""

    status_code = 422


class ServiceUnavailable(ApplicationError):
    """A dependency is down (key backend, HSM); retrying later may succeed."""

    status_code = 503
