"""Offline PIN unblock by challenge/response (docs/offline-unblock.md).

Three parties: the card (holds a per-card admin key), the holder's middleware (reads the challenge,
submits the response and the new PIN), and the helpdesk server (derives the admin key from the
master key and the card serial, computes the response after checking the holder's identity).

- Server: ``admin_key(master, serial, version)`` then ``response(...)``; ``format_code`` turns
  bytes into what the agent reads out (``1CBA-0C2A-33F3-EBC1``), ``parse_code`` reads it back.
- Middleware: ``challenge_apdu()``, ``response_apdu()``, ``new_pin_apdu()`` or, with a transport,
  ``offline_unblock(card, compute_response, new_pin)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from cards import crypto
from cards.apdu import CommandApdu
from cards.errors import MalformedResponse
from cards.iso7816 import (
    IsoCard,
    change_reference_data,
    check_verification,
    external_authenticate,
    get_challenge,
    reset_retry_counter,
)
from cards.products import ADMIN_KEY_REFERENCE, PIN_REFERENCE
from cards.transport import transmit_apdu

__all__ = [
    "admin_key",
    "challenge_apdu",
    "format_code",
    "new_pin_apdu",
    "offline_unblock",
    "parse_code",
    "response",
    "response_apdu",
    "set_admin_key_apdu",
]


def admin_key(master: bytes, serial: bytes, version: int) -> bytes:
    """The card's AES-128 admin key for ``version`` (crypto.unblock_admin_key)."""
    return crypto.unblock_admin_key(master, serial, version)


def response(
    master: bytes, serial: bytes, version: int, challenge: bytes, pin_reference: int = PIN_REFERENCE
) -> bytes:
    """The 8-byte response to a card's challenge, computed by the helpdesk server."""
    key = crypto.unblock_admin_key(master, serial, version)
    return crypto.unblock_response(key, serial, version, pin_reference, challenge)


def format_code(value: bytes) -> str:
    """Upper-case hex in groups of 4, for reading a challenge or response aloud."""
    text = value.hex().upper()
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def parse_code(text: str, length: int = crypto.UNBLOCK_RESPONSE_LENGTH) -> bytes:
    """Inverse of ``format_code``, tolerant of case, spaces and dashes; ValueError otherwise."""
    cleaned = re.sub(r"[\s-]", "", text)
    if len(cleaned) != 2 * length or not re.fullmatch(r"[0-9A-Fa-f]+", cleaned):
        raise ValueError(f"expected {2 * length} hexadecimal digits, got {text!r}")
    return bytes.fromhex(cleaned)


def challenge_apdu() -> CommandApdu:
    """GET CHALLENGE ``00 84 00 00 08``: the card binds the challenge to its admin key."""
    return get_challenge(crypto.UNBLOCK_CHALLENGE_LENGTH)


def response_apdu(value: bytes, key_reference: int = ADMIN_KEY_REFERENCE) -> CommandApdu:
    """EXTERNAL AUTHENTICATE ``00 82 00 8A 08 response`` → ``9000`` / ``6982`` / ``6983``."""
    if len(value) != crypto.UNBLOCK_RESPONSE_LENGTH:
        raise ValueError(f"unblock response must be {crypto.UNBLOCK_RESPONSE_LENGTH} bytes")
    return external_authenticate(key_reference, value)


def new_pin_apdu(new_pin: bytes, pin_reference: int = PIN_REFERENCE) -> CommandApdu:
    """RESET RETRY COUNTER ``00 2C 02 81 Lc new PIN`` (accepted once, right after the response)."""
    return reset_retry_counter(pin_reference, 0x02, new_pin=new_pin)


def set_admin_key_apdu(
    key: bytes, version: int, key_reference: int = ADMIN_KEY_REFERENCE
) -> CommandApdu:
    """Personalization (inside SCP03): CHANGE REFERENCE DATA ``00 24 01 8A 11 KV ‖ key``."""
    if len(key) != 16 or not 0 <= version <= 0xFF:
        raise ValueError("the admin key is AES-128 with a one-byte version")
    return change_reference_data(key_reference, bytes([version]) + key)


def offline_unblock(
    card: IsoCard,
    compute_response: Callable[[bytes], bytes],
    new_pin: bytes,
    *,
    pin_reference: int = PIN_REFERENCE,
    key_reference: int = ADMIN_KEY_REFERENCE,
) -> None:
    """Middleware side: challenge → (helpdesk) response → new PIN; StatusWordError on refusal."""
    challenge = card.send(challenge_apdu(), "GET CHALLENGE")
    if len(challenge) != crypto.UNBLOCK_CHALLENGE_LENGTH:
        raise MalformedResponse("GET CHALLENGE", f"{len(challenge)} bytes instead of 8")
    answer = compute_response(challenge)
    reply = transmit_apdu(
        card.transport,
        response_apdu(answer, key_reference).on_channel(card.channel),
        "EXTERNAL AUTHENTICATE",
    )
    check_verification(reply, "EXTERNAL AUTHENTICATE", "unblock response")
    card.send(new_pin_apdu(new_pin, pin_reference), "RESET RETRY COUNTER")
