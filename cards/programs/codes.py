"""The CPS4 new-codes program (issue 14, item 4), sans I/O: a new PIN and PUK on an issued card.

``new_codes_program(inputs)`` speaks the protocol of ``cards.programs.base`` and runs, like the
personalization, inside a server session carried by the station relay. Two round trips:

1. Select the applet, read EF.SN.ICC and INITIALIZE UPDATE: the card must be the one the request
   names (serial and KDD), else ``CardMismatch`` and nothing is written.
2. EXTERNAL AUTHENTICATE (SCP03 at the product's level: C-MAC, C-ENC, R-MAC, R-ENC), then inside
   the channel CHANGE REFERENCE DATA ``P1 01`` for the PIN and the PUK (the issuer's setting, the
   card resets both try counters), VERIFY with the new PIN, and VERIFY without data for the PUK
   (its tries, none consumed): the card proves it holds the new codes before the server records
   them.

The program is idempotent: the codes are chosen (and sealed) by the server once per request, so a
session torn anywhere is simply run again and writes the same values. Between the two writes a
torn card holds the new PIN with the old PUK; the request is still open and the next session
completes it. The ``Checkpoint`` it yields after the writes is informative only: a resumed
session starts over.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from cards import iso7816
from cards.apdu import CommandApdu
from cards.errors import ProgramError, VerificationError
from cards.products import CPS4, Product
from cards.programs.base import Checkpoint, Program
from cards.programs.contact import (
    atr_check,
    card_identified,
    external_authenticate_item,
    identify_steps,
    initialize_update_step,
    sm_item,
)
from cards.programs.flow import Flow, Item, Progress, Stage, merge
from cards.scp03 import Scp03Host, Scp03StaticKeys
from cards.secret import Secret

__all__ = ["PHASES", "PROGRAM", "NewCodesInputs", "NewCodesResult", "new_codes_program"]

PROGRAM = "cps4-new-codes"
PHASES = ("codes_written", "codes_verified")
OK = (0x9000,)


@dataclass(frozen=True, slots=True)
class NewCodesInputs:
    """The card the request names, its SCP03 keys and the new codes. Keys never show in repr."""

    card_serial: bytes
    kdd: bytes
    atr: bytes
    scp03_keys: Scp03StaticKeys = field(repr=False)
    pin: Secret
    puk: Secret
    product: Product = field(default=CPS4, repr=False)

    def __post_init__(self) -> None:
        product = self.product
        if product.scp03 is None or product.puk is None:
            raise ValueError(f"{product.name} has no issuer channel or no PUK: no new codes")
        if len(self.card_serial) != 10 or len(self.kdd) != 10:
            raise ValueError("card serial and KDD are 10 bytes each")
        for secret, policy in ((self.pin, product.pin), (self.puk, product.puk)):
            value = secret.reveal()
            if not policy.min_length <= len(value) <= policy.max_length or not (
                value.isascii() and value.isdigit()
            ):
                raise ValueError(f"{policy.name} does not follow the product's policy")


@dataclass(frozen=True, slots=True)
class NewCodesResult:
    """What the card confirmed: the new PIN verifies, and the PIN and PUK tries left."""

    card_serial: bytes
    pin_tries_left: int
    puk_tries_left: int
    checkpoint: Checkpoint


class _Runner:
    def __init__(self, inputs: NewCodesInputs, rng: Callable[[int], bytes]) -> None:
        self.inputs = inputs
        self.product = inputs.product
        assert self.product.scp03 is not None and self.product.puk is not None
        self.channel = self.product.contact.channel
        self.scp = Scp03Host(inputs.scp03_keys, channel=self.channel, rng=rng)
        self.progress = Progress(events=set(), completed=[])
        self.puk_tries = 0

    def checkpoint(self, completed: tuple[str, ...], last_step: str) -> Checkpoint:
        return Checkpoint(
            program=PROGRAM,
            product=self.product.name,
            product_version=self.product.version,
            completed=completed,
            last_step=last_step,
        )

    def sm(
        self,
        label: str,
        apdu: CommandApdu,
        expect: tuple[int, ...] = OK,
        *,
        sensitive: bool = False,
    ) -> Item:
        return sm_item(self.scp, label, apdu, expect, sensitive=sensitive)

    def flow(self) -> Flow:
        product = self.product
        assert product.scp03 is not None and product.puk is not None
        atr_check(product, self.inputs.atr)
        opening = [Item([step]) for step in identify_steps(product)]
        iu = Item([initialize_update_step(self.scp)])
        yield Stage([*opening, iu], emits=("identified",))
        card_identified(
            self.scp,
            opening[2].value,
            iu.response,
            card_serial=self.inputs.card_serial,
            kdd=self.inputs.kdd,
            serial_of="request's",
            kdd_of="card's",
        )
        puk_policy = product.puk
        items = [  # wrapped in the order they are sent (the MAC chains them)
            external_authenticate_item(self.scp, product.scp03.security_level),
            self.sm(
                "CHANGE REFERENCE DATA (new PIN)",
                iso7816.change_reference_data(product.pin.reference, _ascii(self.inputs.pin)),
                sensitive=True,
            ),
            self.sm(
                "CHANGE REFERENCE DATA (new PUK)",
                iso7816.change_reference_data(puk_policy.reference, _ascii(self.inputs.puk)),
                sensitive=True,
            ),
            self.sm(
                "VERIFY PIN (new)",
                iso7816.verify(product.pin.reference, _ascii(self.inputs.pin)),
                sensitive=True,
            ),
        ]
        puk_status = self.sm(
            "VERIFY PUK (status, no try)",
            iso7816.verify(puk_policy.reference, None),
            expect=(0x63C0 | puk_policy.tries,),
        )
        yield Stage([*items, puk_status], emits=("codes_written", "codes_verified"))
        sw = puk_status.response.sw
        if sw & 0xFFF0 != 0x63C0:  # pragma: no cover - the step's expect already checked it
            raise VerificationError(f"PUK status answered {sw:04X}")
        self.puk_tries = sw & 0x0F

    def run(self) -> Generator[Any, Any, NewCodesResult]:
        yield from merge(
            [self.flow()], phases=PHASES, progress=self.progress, checkpoint=self.checkpoint
        )
        if self.progress.completed != list(PHASES):
            raise ProgramError("the new-codes program ended before its codes were verified")
        return NewCodesResult(
            card_serial=self.inputs.card_serial,
            pin_tries_left=self.product.pin.tries,
            puk_tries_left=self.puk_tries,
            checkpoint=self.checkpoint(tuple(self.progress.completed), "VERIFY PUK"),
        )


def _ascii(secret: Secret) -> bytes:
    return secret.reveal().encode("ascii")


def new_codes_program(
    inputs: NewCodesInputs, *, rng: Callable[[int], bytes] = secrets.token_bytes
) -> Program:
    """The new-codes program for one card (always from the start: it is idempotent)."""
    return _Runner(inputs, rng).run()
