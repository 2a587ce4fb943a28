"""The secrets a session keeps sealed between round trips and across resumes: PIN, PUK and the
contactless access credential (the FULL-mode DESFire file a door reader checks: as secret as the
PIN), under a key of the card key store bound to the job. They never reach a log, the database in
clear or an API answer; the session row drops them when the job ends."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from uuid import UUID

from cards.products import Product
from cards.secret import Secret
from cms.models import PersonalizationSession
from cms.personalization import keys as card_keys
from core.errors import Conflict


@dataclass(frozen=True)
class Sealed:
    """What a session keeps sealed."""

    pin: Secret
    puk: Secret
    access_credential: bytes = field(repr=False)


def _context(job_id: UUID) -> str:
    return f"session-secrets:{job_id}"


def secrets_new(product: Product) -> Sealed:
    """A random PIN and PUK of the product's lengths and a random access credential."""
    assert product.puk is not None
    pin = "".join(secrets.choice("0123456789") for _ in range(product.pin.min_length))
    puk = "".join(secrets.choice("0123456789") for _ in range(product.puk.min_length))
    return Sealed(Secret(pin), Secret(puk), secrets.token_bytes(16))


def secrets_seal(job_id: UUID, sealed: Sealed) -> bytes:
    clear = json.dumps(
        {
            "pin": sealed.pin.reveal(),
            "puk": sealed.puk.reveal(),
            "access": sealed.access_credential.hex(),
        }
    ).encode()
    return card_keys.seal(clear, context=_context(job_id))


def secrets_open(session: PersonalizationSession) -> Sealed:
    """The session's secrets; 409 once they were dropped (the job ended)."""
    if session.sealed_secrets is None:
        raise Conflict("The session's PIN and PUK were dropped; it cannot continue.")
    clear = card_keys.unseal(bytes(session.sealed_secrets), context=_context(session.job_id))
    values = json.loads(clear)
    return Sealed(Secret(values["pin"]), Secret(values["puk"]), bytes.fromhex(values["access"]))
