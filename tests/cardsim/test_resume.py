"""The host's CPS4 program resumed on a virtual card torn mid-run: the card answers a repeated step
the way the resume path expects (bare ``6A89`` for a file that exists, ``9000`` for a repeated
ACTIVATE FILE), so the card is recovered instead of wiped or spoiled."""

from __future__ import annotations

import pytest

from cards.programs.base import CertificateReply, CertificateRequest
from cards.programs.cps4 import Cps4Result, cps4_program, cps4_rollback
from cardsim import contact
from cardsim.card import Card, KeyPool
from demo.scenario import Issuer
from tests.cardsim.program_run import Trace, cps4_inputs, drive


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture(scope="module")
def trace(key_pool: KeyPool, issuer: Issuer) -> Trace:
    """A whole run on another blank card: where each step falls."""
    card = Card.blank("cps4", keygen=key_pool)
    result, trace = drive(cps4_program(cps4_inputs(card)), card, issuer)
    assert isinstance(result, Cps4Result)
    return trace


def _tear_then_resume(card: Card, issuer: Issuer, n: int) -> tuple[Trace, Trace, Cps4Result]:
    """Tear at APDU n of a fresh run, reinsert, resume from the last checkpoint to the end."""
    issued: list[CertificateReply] = []

    def issue(request: CertificateRequest) -> CertificateReply:
        issued.append(issuer(request))
        return issued[-1]

    card.faults.tear_at = card.apdu_count + n
    first_result, first = drive(cps4_program(cps4_inputs(card)), card, issue)
    assert first_result is None, "the tear did not interrupt the run"
    checkpoint = first.last_checkpoint()
    assert checkpoint is not None
    card.insert()
    # The server keeps the certificates it issued; a resume past their writing gets them back.
    written = checkpoint.done("contact_keys_certificates")
    inputs = cps4_inputs(card, certificates=issued[-1].certificates if written else None)
    result, second = drive(cps4_program(inputs, resume=checkpoint), card, issue)
    assert isinstance(result, Cps4Result)
    return first, second, result


def test_resume_after_a_tear_in_the_file_structure_sees_6a89_and_recovers(
    key_pool: KeyPool, issuer: Issuer, trace: Trace
) -> None:
    card = Card.blank("cps4", keygen=key_pool)
    # Torn on the command after CREATE FILE EF.DIR: the file exists, no checkpoint says so.
    first, second, _ = _tear_then_resume(card, issuer, trace.index_of("CREATE FILE EF.DIR") + 1)
    assert not any(cp.done("contact_structure") for _, cp in first.checkpoints)
    answers = dict(second.responses)
    assert answers["CREATE FILE EF.DIR"] == bytes.fromhex("6A89")  # bare SW: no data, no R-MAC
    assert card.contact_chip.state.lifecycle == contact.LC_LOCKED


def test_resume_after_a_tear_past_the_close_repeats_activate_file(
    key_pool: KeyPool, issuer: Issuer, trace: Trace
) -> None:
    card = Card.blank("cps4", keygen=key_pool)
    close = "ACTIVATE FILE (close lifecycle)"
    first, second, result = _tear_then_resume(card, issuer, trace.index_of(close) + 1)
    assert card.contact_chip.state.lifecycle == contact.LC_LOCKED  # closed before the tear
    checkpoint = first.last_checkpoint()
    assert checkpoint is not None and not checkpoint.done("contact_closed")
    assert dict(second.responses)[close][-2:] == bytes.fromhex("9000")
    assert result.checkpoint.done("contact_verified")
    assert result.checkpoint.done("desfire_verified")


def test_a_card_closed_after_its_last_checkpoint_cannot_be_wiped(
    key_pool: KeyPool, issuer: Issuer, trace: Trace
) -> None:
    from cards.errors import RollbackImpossible

    card = Card.blank("cps4", keygen=key_pool)
    inputs = cps4_inputs(card)
    card.faults.tear_at = card.apdu_count + trace.index_of("ACTIVATE FILE (close lifecycle)") + 1
    _, first = drive(cps4_program(inputs), card, issuer)
    checkpoint = first.last_checkpoint()
    assert checkpoint is not None
    card.insert()
    with pytest.raises(RollbackImpossible, match="SPOILED"):
        drive(cps4_rollback(inputs, checkpoint), card, issuer)
