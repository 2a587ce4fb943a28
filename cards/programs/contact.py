"""Steps shared by the programs that talk to the CPS4 contact applet under SCP03 (issuance
``cps4``, new codes ``codes``, renewal on the card ``renewal``).

Each program opens the card the same way: select the applet, read EF.SN.ICC, INITIALIZE UPDATE;
then checks the card serial and the KDD against what it expects before the EXTERNAL AUTHENTICATE
that opens the secure channel.
"""

from __future__ import annotations

from cards import iso7816
from cards.apdu import CommandApdu, ResponseApdu
from cards.errors import CardMismatch
from cards.products import Product
from cards.programs.base import Step
from cards.programs.flow import Item
from cards.scp03 import Scp03Host

OK = (0x9000,)


def plain_step(channel: int, label: str, apdu: CommandApdu, expect: tuple[int, ...] = OK) -> Step:
    """A contact command outside the secure channel, on the applet's channel."""
    return Step(label, apdu.on_channel(channel).encode(), expect)


def identify_steps(product: Product) -> list[Step]:
    """SELECT applet, SELECT EF.SN.ICC, READ BINARY EF.SN.ICC (its data: the card serial)."""
    channel = product.contact.channel
    return [
        plain_step(
            channel, "SELECT applet", iso7816.select_aid(product.contact.applet_aid, fci=False)
        ),
        plain_step(channel, "SELECT EF.SN.ICC", iso7816.select_path((0xD003,))),
        plain_step(channel, "READ BINARY EF.SN.ICC", iso7816.read_binary(0, 10)),
    ]


def initialize_update_step(scp: Scp03Host) -> Step:
    return Step("INITIALIZE UPDATE", scp.initialize_update().encode(), OK)


def atr_check(product: Product, atr: bytes) -> None:
    """CardMismatch unless ``atr`` is the product's contact ATR."""
    if atr != product.contact.atr:
        raise CardMismatch(f"ATR {atr.hex().upper()} is not the {product.name} ATR")


def card_identified(
    scp: Scp03Host,
    serial: bytes,
    initialize_update: ResponseApdu,
    *,
    card_serial: bytes,
    kdd: bytes,
    serial_of: str,
    kdd_of: str,
) -> None:
    """Check the card serial read and the KDD of the INITIALIZE UPDATE response (which the
    secure channel then takes in); ``serial_of`` and ``kdd_of`` name what they are checked
    against in the CardMismatch."""
    if serial != card_serial:
        raise CardMismatch(
            f"card serial {serial.hex().upper()} is not the {serial_of} {card_serial.hex().upper()}"
        )
    info = scp.process_initialize_update(initialize_update)
    if info.kdd != kdd:
        raise CardMismatch(f"KDD {info.kdd.hex().upper()} is not the {kdd_of}")


def sm_item(
    scp: Scp03Host,
    label: str,
    apdu: CommandApdu,
    expect: tuple[int, ...] = OK,
    *,
    sensitive: bool = False,
) -> Item:
    """A contact command wrapped in SCP03; its handler checks the R-MAC before any data."""
    wrapped = scp.wrap(apdu, label)

    def handler(responses: list[ResponseApdu]) -> bytes:
        return scp.unwrap(wrapped, responses[-1], label).data

    return Item([Step(label, wrapped.encode(), expect, sensitive)], handler)


def external_authenticate_item(scp: Scp03Host, security_level: int) -> Item:
    """EXTERNAL AUTHENTICATE: the secure channel is open once its response is taken in."""
    ext = scp.external_authenticate(security_level)

    def handler(responses: list[ResponseApdu]) -> bytes:
        scp.process_external_authenticate(responses[-1])
        return b""

    return Item([Step("EXTERNAL AUTHENTICATE (SCP03)", ext.encode(), OK, True)], handler)
