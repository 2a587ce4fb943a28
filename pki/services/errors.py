"""How the PKI services report what went wrong below them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from core.errors import BadInput, PolicyViolation, ServiceUnavailable
from pki.domain.errors import MalformedRequest, ProfileViolation
from pki.keys.errors import KeyBackendError, KeyBackendUnavailable


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Domain and backend errors become the application errors users see."""
    try:
        yield
    except ProfileViolation as exc:
        raise PolicyViolation(str(exc), extra={"rule": exc.rule}) from None
    except MalformedRequest as exc:
        raise BadInput(str(exc)) from None
    except KeyBackendUnavailable as exc:
        raise ServiceUnavailable(str(exc)) from None
    except KeyBackendError as exc:
        raise ServiceUnavailable(f"key backend error: {exc}") from None
