"""The CPS4 program end to end against the virtual card (``cardsim``, in process): order, round
trips, checkpoints, resume, rollback, and hostile or wrong cards.

Card behaviour the virtual card does not have on its own (a relay that alters answers, a chip that
stores something else than it was sent, a key swapped under a certificate) comes from thin
wrappers around its transports and from faults injected into its state, never from a second card.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from cards import crypto
from cards.desfire import aid_bytes
from cards.errors import (
    AuthenticationError,
    CardMismatch,
    CheckpointError,
    MacError,
    ProgramError,
    RollbackImpossible,
    StatusWordError,
    TransportError,
    VerificationError,
)
from cards.products import CPS3, CPS4
from cards.programs.base import (
    Batch,
    CertificateReply,
    CertificateRequest,
    Checkpoint,
    Interface,
    RunStats,
    Step,
    run_batch,
    run_program,
)
from cards.programs.cps4 import (
    PHASES,
    Cps4Inputs,
    Cps4Result,
    RollbackResult,
    cps4_program,
    cps4_rollback,
    desfire_identity_record,
)
from cards.secret import Secret
from cards.station_protocol import batch_message
from cards.transport import FunctionTransport, Transport
from cardsim import contact
from cardsim import rsa as card_rsa
from cardsim.card import Card, KeyPool
from cardsim.desfire import CONFIG_FORMAT_DISABLED, CONFIG_RANDOM_UID
from cardsim.fs import Node
from demo.scenario import Issuer, Scenario, make_scenario

PKCS15_DF = CPS4.contact.application.fid


def _run(scenario: Scenario, issuer: Issuer, **kwargs: object) -> tuple[Cps4Result, RunStats]:
    stats = RunStats()
    result = run_program(
        cps4_program(scenario.inputs, **kwargs),  # type: ignore[arg-type]
        scenario.transports,
        issue_certificates=issuer,
        stats=stats,
    )
    assert isinstance(result, Cps4Result)
    return result, stats


def _ef(card: Card, *path: int) -> Node:
    """The file at ``path`` under the MF of the virtual card's contact chip."""
    node: Node | None = card.contact_chip.state.mf
    for fid in path:
        assert node is not None
        node = node.child(fid)
    assert node is not None
    return node


def _power_cycle(card: Card) -> None:
    """The card leaves the reader and comes back: channels, sessions, verified PINs are lost."""
    card.remove()
    card.insert()


def _desfire(card: Card) -> Any:
    assert card.desfire_chip is not None
    return card.desfire_chip.state


def _assert_personalized(scenario: Scenario, result: Cps4Result) -> None:
    card, inputs = scenario.card, scenario.inputs
    state = card.contact_chip.state
    assert state.lifecycle == contact.LC_LOCKED
    # the chip keeps salted digests: the values it holds are the ones sent
    assert state.pins[0x81].digest == contact.pin_digest(state.serial, 0x81, b"2468")
    assert state.pins[0x82].digest == contact.pin_digest(state.serial, 0x82, b"13572468")
    assert state.admin is not None
    assert state.admin.key == inputs.admin_key
    assert (
        bytes(_ef(card, PKCS15_DF, 0xC000).data[: len(result.certificates["auth"])])
        == (result.certificates["auth"])
    )
    for name, key in result.public_keys.items():
        ref = CPS4.key_slot(name).key_reference
        on_card = card_rsa.load(state.keys[ref].der)
        assert on_card.public_key().public_numbers().n == key.modulus
    desfire = _desfire(card)
    assert desfire.picc_key.key == inputs.desfire_picc_key
    assert desfire.config & CONFIG_FORMAT_DISABLED
    assert not desfire.config & CONFIG_RANDOM_UID
    app = desfire.apps[aid_bytes(0x435053)]
    assert [k.key for k in app.keys] == [inputs.desfire_app_keys[k] for k in (0, 1, 2)]
    record = desfire_identity_record(inputs.identity)
    assert bytes(app.files[1].data[: len(record)]) == record


def test_fresh_card_is_personalized_in_order_within_the_round_trip_budget(
    key_pool: KeyPool, issuer: Issuer
) -> None:
    scenario = make_scenario(key_pool)
    result, stats = _run(scenario, issuer)
    _assert_personalized(scenario, result)
    assert stats.batches == 8
    assert stats.batches <= 12
    assert stats.checkpoints[0].completed == ()
    assert [c.phase for c in stats.checkpoints[1:]] == [
        "contact_structure",
        "contact_keys_certificates",
        "contact_secrets",
        "desfire_application",
        "desfire_keys_files",
        "desfire_locked",
        "contact_closed",
        "contact_verified",
        "desfire_verified",
    ]
    assert set(result.checkpoint.completed) == set(PHASES)
    assert result.checkpoint.state["picc_key"] == "diversified"
    assert result.card_serial == scenario.inputs.stock.card_serial
    assert result.desfire_uid == scenario.inputs.stock.desfire_uid
    request = issuer.requests[-1]
    assert dict(request.profiles) == {"auth": "cps_auth", "sign": "cps_sign"}


def test_steps_follow_design_section_5_order(key_pool: KeyPool, issuer: Issuer) -> None:
    """Labels of the first occurrence of each DESIGN §5 step come in the documented order."""
    scenario = make_scenario(key_pool)
    program = cps4_program(scenario.inputs)
    labels: list[str] = []
    reply: object = None
    try:
        while True:
            request = program.send(reply)  # type: ignore[arg-type]
            if isinstance(request, Batch):
                labels += [s.label for s in request.steps]
                reply = run_batch(request, scenario.transports)
            elif isinstance(request, CertificateRequest):
                labels.append("<certificates issued>")
                reply = issuer(request)
            else:
                reply = None
    except StopIteration:
        pass
    order = [
        "READ BINARY EF.SN.ICC",
        "GET UID (PC/SC)",
        "EXTERNAL AUTHENTICATE (SCP03)",
        "CREATE FILE PKCS15 DF",
        "GENERATE ASYMMETRIC KEY PAIR CPS_PRIV_AUT",
        "<certificates issued>",
        "UPDATE BINARY EF.CERT_AUTH #1",
        "CHANGE REFERENCE DATA (set PIN)",
        "CHANGE REFERENCE DATA (set admin key)",
        "CreateApplication",
        "ChangeKey app key 1",
        "WriteData identity_record",
        "SetConfiguration (disable FormatPICC)",
        "ACTIVATE FILE (close lifecycle)",
        "READ BINARY EF.CERT_SIGN @0",
        "PSO: COMPUTE DIGITAL SIGNATURE CPS_PRIV_SIG",
        "AuthenticateEV2First app key 1 (part 2)",
    ]
    positions = [labels.index(label) for label in order]
    assert positions == sorted(positions)
    # DESFire: the transport-key authentication precedes the application's creation.
    assert labels.index("AuthenticateEV2First PICC (part 2)") < labels.index("CreateApplication")


def test_sensitive_steps_are_flagged_and_serializable(key_pool: KeyPool) -> None:
    scenario = make_scenario(key_pool)
    program = cps4_program(scenario.inputs)
    assert isinstance(program.send(None), Checkpoint)
    first = program.send(None)
    assert isinstance(first, Batch)
    as_json = json.dumps(batch_message(first))
    assert "INITIALIZE UPDATE" in as_json
    part1 = next(s for s in first.steps if "part 1" in s.label)
    assert part1.sensitive
    assert part1.interface is Interface.CONTACTLESS
    assert "…" in repr(part1)
    reply = run_batch(first, scenario.transports)
    second = program.send(reply)
    assert isinstance(second, Batch)
    # PIN and keys never appear in clear in any APDU (C-ENC) nor in a repr.
    assert all(b"2468" not in s.apdu for s in second.steps)
    assert "2468" not in repr(scenario.inputs)
    assert "Secret('****')" in repr(scenario.inputs)


class _Crash(Exception):
    pass


class _CrashingTransport:
    """Relays to the card until ``budget`` APDUs were sent, then the station dies."""

    def __init__(self, inner: Transport, counter: list[int]) -> None:
        self._inner = inner
        self._counter = counter

    def transmit(self, apdu: bytes) -> bytes:
        if self._counter[0] <= 0:
            raise TransportError("station killed")
        self._counter[0] -= 1
        return self._inner.transmit(apdu)


@pytest.fixture(scope="module")
def apdu_steps(key_pool: KeyPool, issuer: Issuer) -> list[str]:
    """The step label of every APDU of a whole run (``[i]``: APDUs sent before APDU ``i + 1``)."""
    scenario = make_scenario(key_pool)
    labels: list[str] = []

    def recording(interface: Interface) -> Transport:
        inner = scenario.transports[interface]

        def relay(apdu: bytes) -> bytes:
            labels.append(current[0])
            return inner.transmit(apdu)

        return FunctionTransport(relay)

    current = [""]
    transports = {i: recording(i) for i in scenario.transports}
    program = cps4_program(scenario.inputs)
    reply: object = None
    try:
        while True:
            request = program.send(reply)  # type: ignore[arg-type]
            if isinstance(request, Batch):
                answers: list[bytes] = []
                for step in request.steps:
                    current[0] = step.label
                    answers += run_batch(Batch(step.label, (step,)), transports)
                reply = tuple(answers)
            elif isinstance(request, CertificateRequest):
                reply = issuer(request)
            else:
                reply = None
    except StopIteration:
        pass
    return labels


def _budget(apdu_steps: list[str], crash: tuple[str, int]) -> int:
    """APDUs that get through before the station dies on APDU ``n`` (from 0) of step ``label``."""
    label, n = crash
    return apdu_steps.index(label) + n


def _crash_at(scenario: Scenario, issuer: Issuer, budget: int) -> tuple[Checkpoint | None, bool]:
    """Run until ``budget`` APDUs; return the last checkpoint and whether the run completed."""
    counter = [budget]
    transports: dict[Interface, Transport] = {
        i: _CrashingTransport(t, counter) for i, t in scenario.transports.items()
    }
    checkpoints: list[Checkpoint] = []
    try:
        run_program(
            cps4_program(scenario.inputs),
            transports,
            issue_certificates=issuer,
            on_checkpoint=checkpoints.append,
        )
    except TransportError:
        return (checkpoints[-1] if checkpoints else None), False
    return (checkpoints[-1] if checkpoints else None), True


@pytest.mark.parametrize(
    "crash",
    [
        ("INITIALIZE UPDATE", 0),
        ("CREATE FILE EF.DIR", 0),
        ("CREATE FILE CPS_ACTIVITY_07_PS", 0),
        ("AuthenticateEV2First app key 0 (part 2)", 0),
        ("SELECT EF.DIR (read back)", 0),
        ("READ BINARY EF.TokenInfo @0", 0),
        ("SELECT EF.CDF (read back)", 0),
        ("SELECT CPS_NAME_PS (read back)", 0),
        ("SELECT EF.CERT_AUTH (read back)", 0),
        ("READ BINARY EF.CERT_SIGN @0", 0),
        ("PSO: COMPUTE DIGITAL SIGNATURE CPS_PRIV_AUT", 1),  # its GET RESPONSE
        ("AuthenticateEV2First app key 1 (part 1)", 0),
    ],
)
def test_resume_after_a_station_dies_mid_program(
    key_pool: KeyPool, issuer: Issuer, apdu_steps: list[str], crash: tuple[str, int]
) -> None:
    scenario = make_scenario(key_pool)
    checkpoint, completed = _crash_at(scenario, issuer, _budget(apdu_steps, crash))
    assert not completed
    _power_cycle(scenario.card)
    inputs = scenario.inputs
    if checkpoint is not None and checkpoint.done("contact_keys_certificates"):
        # the server stored the certificates it issued; here they are taken from the card
        certs = {
            slot.name: bytes(_ef(scenario.card, PKCS15_DF, slot.certificate_fid).data)
            for slot in CPS4.key_slots
        }
        inputs = dataclasses.replace(inputs, certificates=_trim(certs))
        scenario = dataclasses.replace(scenario, inputs=inputs)
    result, stats = _run(scenario, issuer, resume=checkpoint)
    _assert_personalized(scenario, result)
    assert stats.checkpoints[-1].done("desfire_verified")


def _trim(certs: dict[str, bytes]) -> dict[str, bytes]:
    """Cut each DER certificate to its encoded length (the EF is zero-padded)."""
    out = {}
    for slot, raw in certs.items():
        length = int.from_bytes(raw[2:4], "big") + 4
        out[slot] = raw[:length]
    return out


@pytest.mark.parametrize(
    "crash,format_disabled",
    [
        (("CREATE FILE EF.DIR", 0), False),
        (("AuthenticateEV2First app key 0 (part 2)", 0), False),
        (("AuthenticateEV2First PICC (part 1)", 1), False),  # the second PICC authentication
        # Past "disable FormatPICC": that bit never comes back on a DESFire, the card still
        # returns to stock and personalizes again.
        (("ACTIVATE FILE (close lifecycle)", 0), True),
    ],
)
def test_rollback_wipes_an_unfinished_card_back_to_stock(
    key_pool: KeyPool,
    issuer: Issuer,
    apdu_steps: list[str],
    crash: tuple[str, int],
    format_disabled: bool,
) -> None:
    scenario = make_scenario(key_pool)
    checkpoint, _ = _crash_at(scenario, issuer, _budget(apdu_steps, crash))
    assert checkpoint is not None
    _power_cycle(scenario.card)
    result = run_program(cps4_rollback(scenario.inputs, checkpoint), scenario.transports)
    assert isinstance(result, RollbackResult)
    state, desfire = scenario.card.contact_chip.state, _desfire(scenario.card)
    assert {node.fid for node in state.mf.children} == {0xD003}
    assert desfire.apps == {}
    assert desfire.picc_key.key == scenario.inputs.desfire_transport_key
    assert bool(desfire.config & CONFIG_FORMAT_DISABLED) is format_disabled
    # the wiped card personalizes again from scratch
    _power_cycle(scenario.card)
    again, _ = _run(scenario, issuer)
    _assert_personalized(scenario, again)


def test_rollback_finds_a_card_closed_after_its_last_checkpoint(
    key_pool: KeyPool, issuer: Issuer, apdu_steps: list[str]
) -> None:
    scenario = make_scenario(key_pool)
    checkpoint, _ = _crash_at(
        scenario, issuer, _budget(apdu_steps, ("SELECT EF.TokenInfo (read back)", 0))
    )
    assert checkpoint is not None
    assert not checkpoint.done("contact_closed")
    assert scenario.card.contact_chip.state.lifecycle == contact.LC_LOCKED
    _power_cycle(scenario.card)
    with pytest.raises(RollbackImpossible, match="closed after the last checkpoint"):
        run_program(cps4_rollback(scenario.inputs, checkpoint), scenario.transports)


def test_rollback_of_a_closed_card_is_impossible(key_pool: KeyPool, issuer: Issuer) -> None:
    scenario = make_scenario(key_pool)
    result, _ = _run(scenario, issuer)
    with pytest.raises(RollbackImpossible, match="SPOILED"):
        cps4_rollback(scenario.inputs, result.checkpoint).send(None)


def test_resume_of_a_finished_card_only_verifies(key_pool: KeyPool, issuer: Issuer) -> None:
    scenario = make_scenario(key_pool)
    first, _ = _run(scenario, issuer)
    _power_cycle(scenario.card)
    inputs = dataclasses.replace(scenario.inputs, certificates=first.certificates)
    again, stats = _run(
        dataclasses.replace(scenario, inputs=inputs), issuer, resume=first.checkpoint
    )
    assert again.public_keys == first.public_keys
    assert stats.checkpoints == []


def test_checkpoint_round_trips_through_json_and_is_validated(key_pool: KeyPool) -> None:
    checkpoint = Checkpoint(
        "cps4-personalization", "CPS4", 1, ("contact_structure",), "x", {"a": "b"}
    )
    assert Checkpoint.from_dict(json.loads(json.dumps(checkpoint.to_dict()))) == checkpoint
    with pytest.raises(CheckpointError):
        Checkpoint.from_dict({"program": "x"})
    scenario = make_scenario(key_pool)
    with pytest.raises(CheckpointError, match="cannot resume"):
        cps4_program(scenario.inputs, resume=dataclasses.replace(checkpoint, product="CPS3"))
    with pytest.raises(CheckpointError, match="unknown phases"):
        cps4_program(scenario.inputs, resume=dataclasses.replace(checkpoint, completed=("nope",)))
    done = dataclasses.replace(checkpoint, completed=("contact_keys_certificates",))
    with pytest.raises(CheckpointError, match="needs them"):
        cps4_program(scenario.inputs, resume=done).send(None)
    assert Checkpoint("p", "CPS4", 1, (), "").phase == ""


def _tampering(inner: Transport, predicate: Callable[[bytes], bool]) -> Transport:
    def relay(apdu: bytes) -> bytes:
        response = inner.transmit(apdu)
        if predicate(apdu) and len(response) > 2:
            return bytes([response[0] ^ 0x01]) + response[1:]
        return response

    return FunctionTransport(relay)


def test_hostile_relay_changing_a_public_key_is_caught_before_any_certificate(
    key_pool: KeyPool, issuer: Issuer
) -> None:
    scenario = make_scenario(key_pool)
    scenario.transports[Interface.CONTACT] = _tampering(
        scenario.transports[Interface.CONTACT], lambda apdu: apdu[1] == 0xC0
    )
    before = len(issuer.requests)
    with pytest.raises(MacError, match="GENERATE ASYMMETRIC KEY PAIR"):
        _run(scenario, issuer)
    assert len(issuer.requests) == before


def test_hostile_relay_on_desfire_is_caught(key_pool: KeyPool, issuer: Issuer) -> None:
    scenario = make_scenario(key_pool)
    scenario.transports[Interface.CONTACTLESS] = _tampering(
        scenario.transports[Interface.CONTACTLESS], lambda apdu: apdu[1] == 0xAD
    )
    with pytest.raises(MacError, match="ReadData identity_record"):
        _run(scenario, issuer)


def test_short_and_missing_responses_are_named(key_pool: KeyPool) -> None:
    scenario = make_scenario(key_pool)
    program = cps4_program(scenario.inputs)
    program.send(None)
    first = program.send(None)
    assert isinstance(first, Batch)
    with pytest.raises(ProgramError, match="no response"):
        program.send((b"\x90\x00",))
    program = cps4_program(scenario.inputs)
    program.send(None)
    first = program.send(None)
    assert isinstance(first, Batch)
    replies = run_batch(first, scenario.transports)
    with pytest.raises(ProgramError, match="responses for"):
        program.send((*replies, b"\x90\x00"))
    program = cps4_program(scenario.inputs)
    program.send(None)
    program.send(None)
    with pytest.raises(ProgramError, match="something other"):
        program.send(None)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (
            lambda i: dataclasses.replace(i, stock=dataclasses.replace(i.stock, atr=b"\x3b\x00")),
            CardMismatch,
            "ATR",
        ),
        (
            lambda i: dataclasses.replace(i, stock=dataclasses.replace(i.stock, kdd=bytes(10))),
            CardMismatch,
            "KDD",
        ),
        (
            lambda i: dataclasses.replace(
                i, stock=dataclasses.replace(i.stock, desfire_uid=bytes(7))
            ),
            CardMismatch,
            "UID",
        ),
        (
            lambda i: dataclasses.replace(
                i, scp03_keys=dataclasses.replace(i.scp03_keys, mac=bytes(16))
            ),
            AuthenticationError,
            "card cryptogram",
        ),
    ],
)
def test_wrong_card_or_keys_are_refused(
    key_pool: KeyPool,
    issuer: Issuer,
    change: Callable[[Cps4Inputs], Cps4Inputs],
    error: type[Exception],
    match: str,
) -> None:
    scenario = make_scenario(key_pool)
    scenario = dataclasses.replace(scenario, inputs=change(scenario.inputs))
    with pytest.raises(error, match=match):
        _run(scenario, issuer)


def test_another_card_in_the_reader_is_refused(key_pool: KeyPool, issuer: Issuer) -> None:
    scenario = make_scenario(key_pool)
    other = make_scenario(key_pool)  # another blank card: its own serial
    assert other.card.serial != scenario.card.serial
    swapped = dataclasses.replace(scenario, transports=other.transports)
    with pytest.raises(CardMismatch, match="card serial"):
        _run(swapped, issuer)


def test_wrong_transport_key_fails_the_desfire_authentication(
    key_pool: KeyPool, issuer: Issuer
) -> None:
    scenario = make_scenario(key_pool)
    inputs = dataclasses.replace(scenario.inputs, desfire_transport_key=bytes(range(16)))
    with pytest.raises(
        StatusWordError, match=r"AuthenticateEV2First PICC \(part 2\): authentication error"
    ):
        _run(dataclasses.replace(scenario, inputs=inputs), issuer)


def test_certificate_for_another_key_is_refused(key_pool: KeyPool, issuer: Issuer) -> None:
    scenario = make_scenario(key_pool)

    def swap(request: CertificateRequest) -> CertificateReply:
        reply = issuer(request)
        return CertificateReply(
            {"auth": reply.certificates["sign"], "sign": reply.certificates["auth"]}
        )

    with pytest.raises(ProgramError, match="another key"):
        run_program(cps4_program(scenario.inputs), scenario.transports, issue_certificates=swap)


@pytest.mark.parametrize(
    ("certificates", "match"),
    [({"auth": b"x", "sign": b"x"}, "not DER"), ({"auth": b""}, "not DER"), ({}, "no certificate")],
)
def test_bad_certificate_replies(
    key_pool: KeyPool, certificates: dict[str, bytes], match: str
) -> None:
    scenario = make_scenario(key_pool)
    with pytest.raises(ProgramError, match=match):
        run_program(
            cps4_program(scenario.inputs),
            scenario.transports,
            issue_certificates=lambda r: CertificateReply(certificates),
        )


def test_certificate_request_needs_an_issuer(key_pool: KeyPool) -> None:
    scenario = make_scenario(key_pool)
    with pytest.raises(ProgramError, match="no issuer"):
        run_program(cps4_program(scenario.inputs), scenario.transports)


def _before_first(inner: Transport, ins: int, fault: Callable[[], None]) -> Transport:
    """Relays to the card; just before the first command with ``ins``, the fault hits the chip."""
    pending = [True]

    def relay(apdu: bytes) -> bytes:
        if pending[0] and apdu[1] == ins:
            pending[0] = False
            fault()
        return inner.transmit(apdu)

    return FunctionTransport(relay)


ACTIVATE_FILE = 0x44  # the close, sent once, just before the contact chip is verified
READ_DATA = 0xAD


def test_final_signature_must_verify(key_pool: KeyPool, issuer: Issuer) -> None:
    scenario = make_scenario(key_pool)
    chip = scenario.card.contact_chip

    def swap_keys() -> None:  # each key now signs under the other's certificate
        keys = chip.state.keys
        auth, sign = (CPS4.key_slot(n).key_reference for n in ("auth", "sign"))
        keys[auth].der, keys[sign].der = keys[sign].der, keys[auth].der
        chip._keys.clear()  # the chip's cache of parsed keys

    contact_reader = scenario.transports[Interface.CONTACT]
    scenario.transports[Interface.CONTACT] = _before_first(contact_reader, ACTIVATE_FILE, swap_keys)
    with pytest.raises(VerificationError, match="does not verify"):
        _run(scenario, issuer)


def test_read_back_mismatch_is_a_verification_error(key_pool: KeyPool, issuer: Issuer) -> None:
    scenario = make_scenario(key_pool)
    ef_dir = next(ef for ef in CPS4.contact.mf_files if ef.name == "EF.DIR")

    def lose_a_byte() -> None:  # what the chip stored is not what it was sent
        _ef(scenario.card, ef_dir.fid).data[0] ^= 0xFF

    contact_reader = scenario.transports[Interface.CONTACT]
    scenario.transports[Interface.CONTACT] = _before_first(
        contact_reader, ACTIVATE_FILE, lose_a_byte
    )
    with pytest.raises(VerificationError, match="read back"):
        _run(scenario, issuer)


def test_desfire_read_back_mismatch(key_pool: KeyPool, issuer: Issuer) -> None:
    scenario = make_scenario(key_pool)
    app = CPS4.desfire
    assert app is not None

    def lose_a_byte() -> None:
        _desfire(scenario.card).apps[aid_bytes(app.aid)].files[1].data[0] ^= 0xFF

    reader = scenario.transports[Interface.CONTACTLESS]
    scenario.transports[Interface.CONTACTLESS] = _before_first(reader, READ_DATA, lose_a_byte)
    with pytest.raises(VerificationError, match="DESFire read back"):
        _run(scenario, issuer)


def test_wrong_pin_in_verification_names_the_step(key_pool: KeyPool, issuer: Issuer) -> None:
    scenario = make_scenario(key_pool)
    state = scenario.card.contact_chip.state

    def other_pin() -> None:  # the chip holds another PIN than the one it was sent
        state.pins[0x81].digest = contact.pin_digest(state.serial, 0x81, b"9999")

    contact_reader = scenario.transports[Interface.CONTACT]
    scenario.transports[Interface.CONTACT] = _before_first(contact_reader, ACTIVATE_FILE, other_pin)
    with pytest.raises(StatusWordError, match=r"VERIFY PIN \(read back\): wrong PIN, 2 tries left"):
        _run(scenario, issuer)


def _inputs(key_pool: KeyPool) -> Cps4Inputs:
    return make_scenario(key_pool).inputs


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda i: dataclasses.replace(i, product=CPS3), "not personalized"),
        (lambda i: dataclasses.replace(i, stock=dataclasses.replace(i.stock, kdd=b"")), "10 bytes"),
        (
            lambda i: dataclasses.replace(i, stock=dataclasses.replace(i.stock, desfire_uid=b"")),
            "7 bytes",
        ),
        (
            lambda i: dataclasses.replace(
                i, identity=dataclasses.replace(i.identity, card_number="0000000000")
            ),
            "differ",
        ),
        (
            lambda i: dataclasses.replace(
                i, scp03_keys=dataclasses.replace(i.scp03_keys, kvn=0x31)
            ),
            "key version",
        ),
        (lambda i: dataclasses.replace(i, admin_key=b""), "admin key"),
        (lambda i: dataclasses.replace(i, desfire_app_keys={0: bytes(16)}), "one diversified key"),
        (
            lambda i: dataclasses.replace(i, desfire_app_keys={0: bytes(16), 1: bytes(16), 2: b""}),
            "AES-128",
        ),
        (lambda i: dataclasses.replace(i, pin=Secret("12a4")), "PIN"),
        (lambda i: dataclasses.replace(i, puk=Secret("123")), "PUK"),
        (
            lambda i: dataclasses.replace(
                i, identity=dataclasses.replace(i.identity, data_objects={"EF.ODF": b"x"})
            ),
            "no data object",
        ),
        (
            lambda i: dataclasses.replace(
                i,
                identity=dataclasses.replace(i.identity, data_objects={"CPS_NAME_PS": bytes(500)}),
            ),
            "exceeds",
        ),
        (lambda i: dataclasses.replace(i, access_credential=bytes(33)), "access credential"),
        (
            lambda i: dataclasses.replace(
                i, identity=dataclasses.replace(i.identity, national_id="8" * 90)
            ),
            "identity record",
        ),
    ],
)
def test_inputs_are_validated(
    key_pool: KeyPool, change: Callable[[Cps4Inputs], Cps4Inputs], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        change(_inputs(key_pool))


def test_secret_hides_its_value() -> None:
    secret = Secret("1234")
    assert "1234" not in repr(secret)
    assert "1234" not in str(secret)
    assert secret == Secret("1234")
    assert secret != Secret("4321")
    assert secret != "1234"
    assert hash(secret) == hash(Secret("9999"))
    assert secret.reveal() == "1234"


def test_run_batch_stops_at_the_first_unexpected_status() -> None:
    sent: list[bytes] = []

    def card(apdu: bytes) -> bytes:
        sent.append(apdu)
        return b"\x6a\x82"

    batch = Batch("b", (Step("first", b"\x00\xa4\x00\x0c"), Step("second", b"\x00\xb0\x00\x00")))
    replies = run_batch(batch, {Interface.CONTACT: FunctionTransport(card)})
    assert replies == (b"\x6a\x82",)
    assert len(sent) == 1
    with pytest.raises(ProgramError, match="no contactless reader"):
        run_batch(
            Batch("b", (Step("x", b"\x90\x60\x00\x00", interface=Interface.CONTACTLESS),)), {}
        )


def test_offline_unblock_against_the_personalized_card(key_pool: KeyPool, issuer: Issuer) -> None:
    from cards import unblock
    from cards.iso7816 import IsoCard
    from demo.scenario import ADMIN_MASTER

    scenario = make_scenario(key_pool)
    _run(scenario, issuer)
    _power_cycle(scenario.card)
    card = IsoCard(scenario.transports[Interface.CONTACT], channel=1)
    card.select_aid(CPS4.contact.applet_aid)
    for _ in range(3):
        with pytest.raises(StatusWordError):
            card.verify(0x81, b"0000")
    assert card.pin_status(0x81) == 0
    serial = scenario.inputs.stock.card_serial

    def helpdesk(challenge: bytes) -> bytes:
        code = unblock.format_code(challenge)
        answer = unblock.response(ADMIN_MASTER, serial, 1, unblock.parse_code(code))
        return unblock.parse_code(unblock.format_code(answer))

    with pytest.raises(StatusWordError, match=r"EXTERNAL AUTHENTICATE: security status"):
        unblock.offline_unblock(card, lambda c: bytes(8), b"4321")
    unblock.offline_unblock(card, helpdesk, b"4321")
    card.verify(0x81, b"4321")
    # the new PIN is accepted once, right after the response; a stale challenge is refused
    with pytest.raises(StatusWordError, match="RESET RETRY COUNTER: conditions of use"):
        card.send(unblock.new_pin_apdu(b"1111"), "RESET RETRY COUNTER")
    # the challenge just answered is spent: a second response to it is refused
    with pytest.raises(StatusWordError, match="conditions of use"):
        card.send(unblock.response_apdu(bytes(8)), "EXTERNAL AUTHENTICATE")
    state = scenario.card.contact_chip.state
    for _ in range(10):
        with pytest.raises(StatusWordError):
            unblock.offline_unblock(card, lambda c: bytes(8), b"4321")
    with pytest.raises(StatusWordError, match="unblock response blocked"):
        unblock.offline_unblock(card, helpdesk, b"4321")
    assert state.admin is not None
    assert state.admin.tries_left == 0
    assert crypto.unblock_admin_key(ADMIN_MASTER, serial, 1) == scenario.inputs.admin_key
