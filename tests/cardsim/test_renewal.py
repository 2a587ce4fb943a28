"""The certificate renewal program (``cards.programs.renewal``) on a personalized virtual card:
a whole run, the card as the middleware sees it after it, and tears at every APDU (marker slow)
with the invariant that the card shows one working pair of certificates at every point.

The middleware's view is read the way OpenSC reads it (EF.ODF → EF.PrKDF / EF.CDF → the
certificate EFs, then VERIFY PIN and a signature by each key reference the PrKDF names, checked
against the certificate the CDF names); ``tests/cms/test_card_renewal_pcscd.py`` checks the same
with OpenSC itself through pcscd.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cards import iso7816, pkcs15
from cards.errors import TransportError
from cards.products import CPS4
from cards.programs.base import (
    Batch,
    CertificateReply,
    CertificateRequest,
    Checkpoint,
    Interface,
    Reply,
    run_batch,
)
from cards.programs.cps4 import Cps4Result, cps4_program
from cards.programs.renewal import (
    PHASES,
    RenewalInputs,
    RenewalResult,
    bank_slots,
    live_bank,
    renewal_program,
)
from cards.scp03 import Scp03StaticKeys
from cards.transport import transmit_apdu
from cardsim.card import TEST_SCP03_MASTER, Card, CardRemovedError, KeyPool
from tests.cardsim.conftest import KEY_POOL_FILE
from tests.cardsim.program_run import cps4_inputs, drive
from tests.cms.personalization.tear_plan import _SizedIssuer

PIN = b"2468"  # cps4_inputs' PIN


class _Transport:
    def __init__(self, transmit: Callable[[bytes], bytes]) -> None:
        self._transmit = transmit

    def transmit(self, apdu: bytes) -> bytes:
        try:
            return self._transmit(apdu)
        except CardRemovedError:
            raise TransportError("card removed") from None


@pytest.fixture(scope="module")
def key_source() -> KeyPool:
    """The renewals' keys: never those of the personalization (the committed pool)."""
    return KeyPool(
        [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(6)]
    )


@pytest.fixture(scope="module")
def personalized() -> tuple[dict[str, Any], _SizedIssuer]:
    """A CPS4 personalized by the CPS4 program (state only: each test makes its own card)."""
    pool = KeyPool.from_pem_file(KEY_POOL_FILE)
    issuer = _SizedIssuer(pool())
    card = Card.blank("cps4", keygen=pool)
    result, _ = drive(cps4_program(cps4_inputs(card)), card, issuer)
    assert isinstance(result, Cps4Result)
    return card.to_json(), issuer


def _card(state: dict[str, Any], keys: KeyPool) -> Card:
    return Card(state, keygen=keys)


def _inputs(card: Card, certificates: dict[str, bytes] | None = None) -> RenewalInputs:
    assert CPS4.scp03 is not None
    return RenewalInputs(
        card_serial=card.serial,
        kdd=card.serial,
        scp03_keys=Scp03StaticKeys.diversify(
            TEST_SCP03_MASTER, card.serial, CPS4.scp03.kvn, CPS4.scp03.key_length
        ),
        certificates=certificates,
    )


class Run:
    """Drives the renewal program like a station and a server would (certificates recorded as
    pending, the last checkpoint kept), counting APDUs; returns None when the card is torn."""

    def __init__(self, issuer: _SizedIssuer) -> None:
        self.issuer = issuer
        self.pending: dict[str, bytes] = {}
        self.checkpoint: Checkpoint | None = None
        self.labels: list[str] = []

    def __call__(self, card: Card) -> RenewalResult | None:
        program = renewal_program(_inputs(card, self.pending or None), resume=self.checkpoint)
        transports = {Interface.CONTACT: _Transport(card.contact.transmit)}
        reply: Reply = None
        while True:
            try:
                request = program.send(reply)
            except StopIteration as stop:
                result: RenewalResult = stop.value
                return result
            if isinstance(request, Checkpoint):
                self.checkpoint = request
                reply = None
            elif isinstance(request, CertificateRequest):
                reply = self.issuer(request)
                assert isinstance(reply, CertificateReply)
                self.pending = dict(reply.certificates)
            else:
                assert isinstance(request, Batch)
                out = []
                for step in request.steps:
                    self.labels.append(step.label)
                    try:
                        (answer,) = run_batch(
                            Batch(step.label, (step,)), transports, holder_pin=PIN
                        )
                    except TransportError:
                        program.close()
                        return None
                    out.append(answer)
                    if int.from_bytes(answer[-2:], "big") not in step.expect:
                        break
                reply = tuple(out)


def _der(data: bytes) -> bytes:
    """One DER element from the start of an EF (the rest is what was there before)."""
    assert data[0] == 0x30 and data[1] == 0x82
    return data[: 4 + int.from_bytes(data[2:4], "big")]


def working_pair(card: Card, pin: bytes = PIN) -> dict[str, bytes]:
    """What the middleware sees: the live bank's certificates, each of whose key references signs
    with the PIN, checked against it. Fails the test if the card shows anything else."""
    transport = _Transport(card.contact.transmit)

    def ok(apdu: iso7816.CommandApdu) -> bytes:
        response = transmit_apdu(transport, apdu.encode(), "check")
        assert response.sw == 0x9000, hex(response.sw)
        return response.data

    def read(path: tuple[int, ...], size: int) -> bytes:
        ok(iso7816.select_path(path))
        out = b""
        while len(out) < size:
            out += ok(iso7816.read_binary(len(out), min(0xE0, size - len(out))))
        return out

    df = CPS4.contact.application.fid
    bank = live_bank(CPS4, read((df, 0x5031), 0x40))
    banked = dataclasses.replace(CPS4, key_slots=bank_slots(CPS4, bank))
    assert read((df, bank.prkdf_fid), 0x100).startswith(pkcs15.prkdf(banked))
    assert read((df, bank.cdf_fid), 0x100).startswith(pkcs15.cdf(banked))
    seen = {}
    nonce = b"middleware check"
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420")
    for slot in CPS4.key_slots:
        der = _der(read((df, bank.certificate_fids[slot.name]), 0x800))
        public = x509.load_der_x509_certificate(der).public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        ok(iso7816.verify(CPS4.pin.reference, pin))
        ok(iso7816.manage_security_environment(0xB6, bank.key_references[slot.name]))
        signature = ok(
            iso7816.pso_compute_digital_signature(digest_info + hashlib.sha256(nonce).digest())
        )
        public.verify(signature, nonce, padding.PKCS1v15(), hashes.SHA256())
        seen[slot.name] = der
    return seen


def test_renewal_replaces_the_pair_and_the_pin_still_works(personalized, key_source):
    state, issuer = personalized
    card = _card(state, key_source)
    before = working_pair(card)
    run = Run(issuer)
    result = run(card)
    assert result is not None and result.bank == "B"
    assert run.checkpoint is not None and run.checkpoint.completed == PHASES
    after = working_pair(card)
    assert after == dict(result.certificates)
    assert set(after.values()).isdisjoint(before.values())
    # the old bank's EFs are gone, its keys stay in their slots (no key deletion command)
    df = card.contact_chip.state.mf.child(CPS4.contact.application.fid)
    assert df is not None
    fids = {child.fid for child in df.children}
    assert {0x4402, 0x4404, 0xC000, 0xC001}.isdisjoint(fids)
    assert {0x4412, 0x4414, 0xC010, 0xC011} <= fids
    # a second renewal goes back to bank A
    again = Run(issuer)(card)
    assert again is not None and again.bank == "A"
    assert working_pair(card) == dict(again.certificates)


def test_the_server_never_sees_the_holders_pin(personalized, key_source):
    state, issuer = personalized
    card = _card(state, key_source)
    batches: list[Batch] = []
    program = renewal_program(_inputs(card))
    transports = {Interface.CONTACT: _Transport(card.contact.transmit)}
    reply: Reply = None
    with pytest.raises(StopIteration):
        while True:
            request = program.send(reply)
            if isinstance(request, Batch):
                batches.append(request)
                reply = run_batch(request, transports, holder_pin=PIN)
            elif isinstance(request, CertificateRequest):
                reply = issuer(request)
            else:
                reply = None
    holder_steps = [s for b in batches for s in b.steps if s.holder_pin]
    assert holder_steps and all(len(s.apdu) == 4 for s in holder_steps)
    assert all(PIN not in s.apdu for b in batches for s in b.steps)


def test_a_closed_card_refuses_post_issuance_commands_outside_the_application(
    personalized, key_source
):
    """The renewal's CREATE/DELETE are open to the issuer for EFs of the application DF only:
    the DF itself and the MF's files stay refused (a rollback of a closed card still fails)."""
    state, issuer = personalized
    card = _card(state, key_source)
    run = Run(issuer)
    assert run(card) is not None
    chip = card.contact_chip
    assert chip.state.lifecycle == 0x7F
    # nothing outside SCP03 is accepted either
    raw = card.contact.transmit(iso7816.delete_file(0xC010).on_channel(1).encode())
    assert raw[-2:] != b"\x90\x00"


def _tear_and_recover(
    state: dict[str, Any], issuer: _SizedIssuer, keys: KeyPool, n: int, executes: bool
) -> int:
    card = _card(state, keys)
    before = working_pair(card)
    card.apdu_count = 0
    card.faults.tear_at = n
    card.faults.tear_executes = executes
    run = Run(issuer)
    result = run(card)
    if result is not None:
        return 0  # the run ended before APDU n
    card.insert()
    card.apdu_count = 0
    torn = working_pair(card)  # one working pair: the old or the new, never none
    assert torn == before or torn == run.pending
    result = run(card)
    assert result is not None
    assert working_pair(card) == dict(result.certificates)
    assert set(result.certificates.values()).isdisjoint(before.values())
    return 1


@pytest.mark.parametrize("executes", [False, True], ids=["lost", "executed"])
def test_a_tear_in_each_phase_is_recovered(personalized, key_source, executes):
    state, issuer = personalized
    labels = Run(issuer)
    assert labels(_card(state, key_source)) is not None
    points = [1, 8, 9, 20, 40, len(labels.labels) - 8, len(labels.labels) - 7, len(labels.labels)]
    for n in points:
        assert _tear_and_recover(state, issuer, key_source, n, executes) == 1, n


@pytest.mark.slow
@pytest.mark.parametrize("executes", [False, True], ids=["lost", "executed"])
def test_renewal_tear_sweep(personalized, key_source, executes):
    """A tear at every APDU of the renewal (the response lost, or the command executed and its
    response lost), then the card reinserted and the session resumed from its checkpoint."""
    state, issuer = personalized
    measure = Run(issuer)
    assert measure(_card(state, key_source)) is not None
    total = len(measure.labels)
    torn = sum(
        _tear_and_recover(state, issuer, key_source, n, executes) for n in range(1, total + 1)
    )
    assert torn == total
