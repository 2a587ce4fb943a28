"""Offline PIN unblock end to end (issue 14) on a virtual CPS4 behind pcscd: personalized by the
station relay through PC/SC, PIN blocked by three wrong VERIFYs, ``python -m cpsclient unblock``
(a real process, pyscard) shows the challenge, the helpdesk API answers it for an agent who
recorded the identity check, the client submits response and new PIN, and ``pkcs11-tool --login``
with the new PIN signs a message that verifies against the card's certificate."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.cardsim.conftest import pcscd  # noqa: F401 - the shared pcscd fixture
from tests.cardsim.pcscd_support import (
    CONTACT_READER,
    Simulator,
    connect,
    simulator_running,
    transmitter,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.pcscd,
    pytest.mark.django_db(transaction=True),
]

REPO = Path(__file__).resolve().parents[2]
OPENSC_CONF = """app default {{
  card_atr {atr} {{ driver = "MaskTech"; name = "CPS4 (ISO 7816-15)"; }}
}}
"""
MODULES = (
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
    "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
)


@pytest.fixture
def sim(pcscd: object, tmp_path: Path) -> Iterator[Simulator]:  # noqa: F811
    with simulator_running(Simulator(tmp_path)) as simulator:
        yield simulator


def _apdu(tx: Any, raw: bytes) -> int:
    return int.from_bytes(tx(raw)[-2:], "big")


class Client:
    """``python -m cpsclient`` with its standard output read line by line."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cpsclient", *args],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, prefix: str) -> str:
        while True:
            line = self.lines.get(timeout=60)
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def send(self, *lines: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("".join(f"{line}\n" for line in lines))
        self.process.stdin.flush()

    def finish(self) -> str:
        code = self.process.wait(timeout=60)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        assert code == 0, "\n".join(self.seen)
        return "\n".join(self.seen)


def _personalized(scene: Any, sim: Simulator) -> tuple[Any, str, str]:
    """A CPS4 personalized through pcscd by the station relay, activated; its PIN and PUK."""
    from cardsim.card import Card as VirtualCard
    from cardsim.card import load_state
    from cms.mailers.services import _unseal
    from cms.models import PinMailer
    from cms.services.cards import card_transition
    from demo import setup
    from personalization_station.pcsc import close, wait_for_card
    from personalization_station.relay import personalize

    virtual = VirtualCard(load_state(sim.state))
    setup.blank_card_register(
        product=scene.product,
        pool=scene.pool,
        chip_serial=virtual.serial.hex(),
        desfire_uid=virtual.desfire_chip.state.uid.hex(),
    )
    request = setup.request_queued(
        holder=setup.holder_demo(), product=scene.product, pool=scene.pool, operator=scene.operator
    )
    link = wait_for_card(CONTACT_READER, timeout=30)
    try:
        assert personalize(scene.api(), link).state == "done"
    finally:
        close(link)
    request.refresh_from_db()
    card = request.card
    card_transition(card_id=card.pk, transition="activate", caller=scene.operator)
    card.refresh_from_db()
    codes = _unseal(PinMailer.objects.get(card=card))
    return card, codes.pin, codes.puk


def _block_pin(old_pin: str) -> None:
    conn = connect(CONTACT_READER)
    tx = transmitter(conn)
    wrong = b"1111" if old_pin != "1111" else b"2222"
    for _ in range(3):
        _apdu(tx, bytes.fromhex("0020008104") + wrong)
    assert _apdu(tx, bytes.fromhex("0020008100")) == 0x6983
    conn.disconnect()


def _pkcs11_sign(card: Any, pin: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``pkcs11-tool --login --sign`` through OpenSC; the signature checked against the card's
    authentication certificate when it succeeds."""
    from cards.products import CPS4
    from cms.models import CardCertificate

    module = next((p for p in MODULES if Path(p).exists()), None)
    assert module is not None, "OpenSC is missing: make test installs it (opensc)"
    conf = tmp_path / "opensc.conf"
    conf.write_text(OPENSC_CONF.format(atr=":".join(f"{b:02x}" for b in CPS4.contact.atr)))
    env = dict(os.environ, OPENSC_CONF=str(conf))
    message = b"signed after an unblock"
    (tmp_path / "data.bin").write_bytes(message)
    (tmp_path / "sig.bin").unlink(missing_ok=True)
    signed = subprocess.run(
        ["pkcs11-tool", "--module", module, "--slot-index", "0", "--login", "--pin", pin,
         "--sign", "-m", "SHA256-RSA-PKCS", "--input-file", "data.bin", "--output-file", "sig.bin"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if signed.returncode == 0:
        auth = CardCertificate.objects.get(card=card, slot="auth").certificate
        public = x509.load_der_x509_certificate(bytes(auth.der)).public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(
            (tmp_path / "sig.bin").read_bytes(), message, padding.PKCS1v15(), hashes.SHA256()
        )
    return signed


def test_puk_unblock_at_a_station_then_pkcs11_signs_with_the_new_pin(
    scene: Any, sim: Simulator, tmp_path: Path, api_client_for: Any
) -> None:
    from cards.iso7816 import IsoCard
    from personalization_station import codes
    from personalization_station.pcsc import PcscTransport

    card, old_pin, puk = _personalized(scene, sim)
    _block_pin(old_pin)
    transport = PcscTransport(CONTACT_READER)
    transport.connect()
    try:
        iso = IsoCard(transport)
        new_pin = "9753" if old_pin != "9753" else "8642"
        outcome = codes.puk_unblock(iso, puk, new_pin)
        assert outcome.outcome == "unblocked"
        codes.puk_unblock_report(scene.api(), iso, outcome)
    finally:
        transport.close()
    state = api_client_for("helpdesk_agent").get(f"/api/v1/helpdesk/cards/{card.pk}/unblock-state")
    assert state.json()["history"][0]["outcome"] == "unblocked"
    signed = _pkcs11_sign(card, new_pin, tmp_path)
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert _pkcs11_sign(card, old_pin, tmp_path).returncode != 0


def test_cpsclient_unblock_with_the_helpdesk_then_pkcs11_signs_with_the_new_pin(
    scene: Any, sim: Simulator, tmp_path: Path, api_client_for: Any
) -> None:
    card, old_pin, _ = _personalized(scene, sim)
    assert card.admin_key_version == 1
    _block_pin(old_pin)
    status = Client("status", "--reader", CONTACT_READER, "--json")
    assert '"pin_tries_left": 0' in status.finish()

    # --- the holder's client, the helpdesk agent, the new PIN -------------------------------------
    client = Client("unblock", "--reader", "Virtual PCD 00 00")
    challenge = client.wait_for("Challenge: ").split(": ", 1)[1]
    agent = api_client_for("helpdesk_agent")
    answer = agent.post(
        f"/api/v1/helpdesk/cards/{card.pk}/offline-unblock",
        {
            "identity_method": "callback",
            "identity_reference": "+33 1 23 45 67 89",
            "challenge": challenge,
        },
        format="json",
    )
    assert answer.status_code == 200, answer.content
    client.wait_for("Response read by the helpdesk")
    client.send(answer.json()["display"].lower())  # typed as heard: case does not matter
    client.wait_for("New PIN")
    new_pin = "9753" if old_pin != "9753" else "8642"
    client.send(new_pin, new_pin)
    output = client.finish()
    assert "PIN unblocked" in output and "PIN tries left: 3" in output, output
    assert new_pin not in output

    # --- OpenSC's PKCS#11 logs in with the new PIN; the signature verifies; the old PIN fails -----
    signed = _pkcs11_sign(card, new_pin, tmp_path)
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert _pkcs11_sign(card, old_pin, tmp_path).returncode != 0


def test_new_codes_at_a_station_the_old_puk_fails_and_pkcs11_signs_with_the_new_pin(
    scene: Any, sim: Simulator, tmp_path: Path, api_client_for: Any
) -> None:
    """Issue 14, item 4: an agent files new codes (identity check recorded), the station relay
    serves the card through pcscd (a server-driven session inside SCP03), the old PUK is refused
    by RESET RETRY COUNTER, and the new PIN, read from the sealed new mailer, logs in and signs."""
    from cards.iso7816 import IsoCard
    from cms.mailers.services import _unseal
    from cms.models import NewCodesRequest, PinMailer
    from personalization_station import codes
    from personalization_station.pcsc import PcscTransport, close, wait_for_card
    from personalization_station.relay import personalize

    card, old_pin, old_puk = _personalized(scene, sim)
    agent = api_client_for("helpdesk_agent")
    filed = agent.post(
        f"/api/v1/helpdesk/cards/{card.pk}/new-codes",
        {
            "reason": "forgotten_puk",
            "identity_method": "in_person_document",
            "identity_reference": "CNI 123456789012",
        },
        format="json",
    )
    assert filed.status_code == 201, filed.content

    link = wait_for_card(CONTACT_READER, timeout=30)
    try:
        outcome = personalize(scene.api(), link)
    finally:
        close(link)
    assert outcome.state == "done", outcome.message
    assert NewCodesRequest.objects.get(pk=filed.json()["id"]).status == "done"
    new = _unseal(PinMailer.objects.get(card=card, kind="new_codes"))
    assert PinMailer.objects.get(card=card, kind="issuance").status == "voided"

    # The old PUK is refused by the card (RESET RETRY COUNTER, at a station).
    transport = PcscTransport(CONTACT_READER)
    transport.connect()
    try:
        refused = codes.puk_unblock(IsoCard(transport), old_puk, "9753")
    finally:
        transport.close()
    assert refused.outcome == "wrong_puk", refused

    signed = _pkcs11_sign(card, new.pin, tmp_path)
    assert signed.returncode == 0, signed.stdout + signed.stderr
    if old_pin != new.pin:
        assert _pkcs11_sign(card, old_pin, tmp_path).returncode != 0
