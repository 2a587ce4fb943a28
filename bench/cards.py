"""Card protocol benchmark: secure-messaging throughput and the host CPU cost of one CPS4 card.

    python bench/cards.py [--quick]

Everything runs in process against the virtual card (``cardsim.card.Card``, its in-process
``transmit``: no reader, no pcscd, no card delays). Prints:
- SCP03 (security level 33: C-MAC, C-ENC, R-MAC, R-ENC) UPDATE BINARY of 224 bytes: APDUs/s, and
  the same writes without secure messaging for comparison (ratio);
- DESFire EV2 FULL-mode WriteData of 64 bytes: APDUs/s;
- one CPS4 personalization program run: round trips, APDUs, host CPU (the virtual card's CPU
  subtracted), against the DESIGN.md §10 targets (≤ 12 round trips, ≤ 50 ms server CPU per card).
Benchmarks print; tests never assert on time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cards import iso7816  # noqa: E402
from cards.apdu import ResponseApdu  # noqa: E402
from cards.desfire import DesfireCard, FileSettings  # noqa: E402
from cards.iso7816 import FileControl, build_fcp  # noqa: E402
from cards.products import CPS4  # noqa: E402
from cards.programs.base import Interface, RunStats, run_program  # noqa: E402
from cards.programs.cps4 import cps4_program  # noqa: E402
from cards.scp03 import Scp03Host, Scp03StaticKeys  # noqa: E402
from cards.transport import FunctionTransport, transmit_apdu  # noqa: E402
from cardsim.card import TEST_SCP03_MASTER, Card, KeyPool  # noqa: E402
from demo.scenario import Issuer, load_key_pool, make_scenario, transport_key  # noqa: E402


class Timed:
    """Calls a card-side function and accumulates the CPU time spent inside it."""

    def __init__(self, card: Callable[[bytes], bytes]) -> None:
        self._card = card
        self.cpu = 0.0
        self.calls = 0

    def __call__(self, apdu: bytes) -> bytes:
        start = time.process_time()
        try:
            return self._card(apdu)
        finally:
            self.cpu += time.process_time() - start
            self.calls += 1


def _scp03_writes(n: int, pool: KeyPool) -> tuple[float, float]:
    card = Card.blank("cps4", keygen=pool)
    assert CPS4.scp03 is not None
    keys = Scp03StaticKeys.diversify(
        TEST_SCP03_MASTER, card.serial, CPS4.scp03.kvn, CPS4.scp03.key_length
    )
    transport = FunctionTransport(card.transmit)
    host = Scp03Host(keys, channel=1)
    transmit_apdu(
        transport, iso7816.select_aid(CPS4.contact.applet_aid, fci=False).on_channel(1), "SELECT"
    )
    host.process_initialize_update(
        transmit_apdu(transport, host.initialize_update(), "INITIALIZE UPDATE")
    )
    host.process_external_authenticate(
        transmit_apdu(transport, host.external_authenticate(0x33), "EXT AUTH")
    )
    fcp = build_fcp(
        FileControl(fid=0xBE00, size=0x7F00, descriptor=1, security=bytes([0x43, 0x40, 0x40, 0x00]))
    )
    for apdu in (iso7816.select_fid(0x3F00), iso7816.create_file(fcp)):
        wrapped = host.wrap(apdu)
        host.unwrap(wrapped, transmit_apdu(transport, wrapped.encode(), "setup")).check("setup")
    chunk = bytes(range(224))
    start = time.perf_counter()
    for i in range(n):
        wrapped = host.wrap(iso7816.update_binary((i * 224) % 0x7E00, chunk), "UPDATE BINARY")
        response = ResponseApdu.decode(transport.transmit(wrapped.encode()), "UPDATE BINARY")
        host.unwrap(wrapped, response, "UPDATE BINARY").check("UPDATE BINARY")
    sm_rate = n / (time.perf_counter() - start)
    # the same writes in plain (a personalization-state card accepts them only wrapped, so this
    # measures the transport and APDU layers alone against an echo card)
    plain = FunctionTransport(lambda apdu: b"\x90\x00")
    start = time.perf_counter()
    for i in range(n):
        raw = iso7816.update_binary((i * 224) % 0x7E00, chunk).on_channel(1).encode()
        ResponseApdu.decode(plain.transmit(raw), "UPDATE BINARY").check("UPDATE BINARY")
    return sm_rate, n / (time.perf_counter() - start)


def _desfire_writes(n: int) -> float:
    chip = Card.blank("cps4")
    assert chip.contactless is not None and chip.desfire_chip is not None
    key = transport_key(chip.desfire_chip.state.uid)  # the test vendor's transport key
    card = DesfireCard(FunctionTransport(chip.contactless.transmit))
    card.select_application(0)
    session = card.authenticate(0, key)
    card.run(session.create_application(bytes.fromhex("5350430B83")))
    card.select_application(0x435053)
    session = card.authenticate(0, bytes(16))
    card.run(session.create_std_data_file(FileSettings(1, 256, 0x03, 0, 0, 0, 0)))
    data = bytes(range(64))
    start = time.perf_counter()
    for i in range(n):
        card.write_data(1, (i * 64) % 192, data)
    return n / (time.perf_counter() - start)


def _cps4_runs(runs: int, pool: KeyPool, issuer: Issuer) -> None:
    host_ms: list[float] = []
    total_ms: list[float] = []
    issuer_ms: list[float] = []
    stats = RunStats()
    for _ in range(runs):
        scenario = make_scenario(pool)
        assert scenario.card.contactless is not None
        contact = Timed(scenario.card.contact.transmit)
        contactless = Timed(scenario.card.contactless.transmit)
        scenario.transports = {
            Interface.CONTACT: FunctionTransport(contact),
            Interface.CONTACTLESS: FunctionTransport(contactless),
        }
        issuer_cpu = [0.0]

        def issue(request, issuer_cpu=issuer_cpu):  # type: ignore[no-untyped-def]
            start = time.process_time()
            try:
                return issuer(request)
            finally:
                issuer_cpu[0] += time.process_time() - start

        stats = RunStats()
        start = time.process_time()
        run_program(
            cps4_program(scenario.inputs),
            scenario.transports,
            issue_certificates=issue,
            stats=stats,
        )
        total = time.process_time() - start
        total_ms.append(total * 1000)
        issuer_ms.append(issuer_cpu[0] * 1000)
        host_ms.append((total - contact.cpu - contactless.cpu - issuer_cpu[0]) * 1000)
    host = statistics.median(host_ms)
    ratio = stats.batches / 12
    print(f"  round trips (station<->server): {stats.batches}   target <= 12   ratio {ratio:.2f}")
    print(f"  APDUs (incl. GET RESPONSE):     {stats.apdus}")
    print(f"  host CPU per card, median of {runs}: {host:.1f} ms   target <= 50 ms", end="")
    print(f"   ratio {host / 50:.2f}")
    print(
        f"  (whole in-process run {statistics.median(total_ms):.1f} ms, of which virtual card "
        f"{statistics.median(total_ms) - host - statistics.median(issuer_ms):.1f} ms and test CA "
        f"{statistics.median(issuer_ms):.1f} ms, both excluded)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    n = 500 if args.quick else 5000
    runs = 5 if args.quick else 25
    pool = load_key_pool()
    issuer = Issuer()
    print("cards: secure messaging through the in-process transport (virtual card included)")
    sm_rate, plain_rate = _scp03_writes(n, pool)
    print(f"  SCP03 SL33 UPDATE BINARY 224 B: {sm_rate:,.0f} APDUs/s")
    print(f"  plain UPDATE BINARY 224 B (echo card): {plain_rate:,.0f} APDUs/s")
    print(f"  SCP03/plain throughput ratio: {sm_rate / plain_rate:.3f}")
    print(f"  DESFire EV2 FULL WriteData 64 B: {_desfire_writes(n):,.0f} APDUs/s")
    print("cards: one CPS4 personalization (program + crypto on the host, virtual card subtracted)")
    _cps4_runs(runs, pool, issuer)


if __name__ == "__main__":
    main()
