"""The verifier kit end to end through pcscd (issue 16): a CPS4 issued through the station relay,
then served by ``python -m cardsim`` behind pcscd + vpcd; ``python -m cpsclient`` processes sync
the signed deny list from the live server and read the card through pyscard. Issued: identify
and contactless-auth succeed; suspended + sync: identify refuses; reinstated + sync: accepted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.cardsim.pcscd_support import CONTACTLESS_READER, Simulator, simulator_running
from tests.cms.personalization.conftest import (
    card_queued,
    link_of,
    virtual_card,  # noqa: F401
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.pcscd,
    pytest.mark.django_db(transaction=True),
]

REPO = Path(__file__).resolve().parents[2]


def _cpsclient(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), CPSCLIENT_HOME=str(store))
    return subprocess.run(
        [sys.executable, "-m", "cpsclient", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _publish() -> None:
    from cms.contactless.services import deny_list_publish
    from core.actors import Actor

    assert deny_list_publish(actor=Actor.system("tests"), force=True) is not None


def test_kit_through_pcscd(
    scene,
    virtual_card,  # noqa: F811 - the fixture imported above
    pcscd,
    make_user,
    live_server,
    tmp_path,
):
    from cardsim.card import save_state
    from cms.callers import Caller
    from cms.models import Card
    from cms.personalization.keys import card_key_store
    from cms.services.cards import card_transition, card_transition_approve
    from personalization_station.relay import personalize
    from pki.keys.symmetric import master_label
    from pki.models import CertificateAuthority

    card_queued(scene, virtual_card)
    assert personalize(scene.api(), link_of(virtual_card)).state == "done"
    card = Card.objects.get(chip_serial=virtual_card.serial.hex().upper())
    helpdesk = Caller.for_user(make_user("helpdesk_agent"))
    card_transition(card_id=card.pk, transition="activate", caller=helpdesk)
    _publish()

    store = tmp_path / "store"
    store.mkdir()
    root = CertificateAuthority.objects.get(short_name="ACR-FO-TEST")
    (store / "ca.pem").write_bytes(
        x509.load_der_x509_certificate(bytes(root.certificate_der)).public_bytes(Encoding.PEM)
    )
    key_file = tmp_path / "read-master.hex"
    # what the relying party unwrapped from its export (tests/cms/contactless/test_relying_parties)
    key_file.write_text(card_key_store()._key(master_label("desfire-app-1", 1)).hex())  # type: ignore[attr-defined]
    url = f"{live_server.url}/contactless/deny-list"

    save_state(tmp_path / "card.json", virtual_card.to_json())
    with simulator_running(Simulator(tmp_path)):
        synced = _cpsclient("deny-list", "sync", url, store=store)
        assert synced.returncode == 0, synced.stderr
        seen = _cpsclient("identify", "--reader", CONTACTLESS_READER, store=store)
        assert seen.returncode == 0 and f"ACCEPTED {card.desfire_uid}" in seen.stdout, seen
        auth = _cpsclient(
            "contactless-auth", "--reader", CONTACTLESS_READER, "--key-file", str(key_file),
            store=store,
        )  # fmt: skip
        assert auth.returncode == 0 and f"AUTHENTICATED card {card.card_number}" in auth.stdout, (
            auth
        )

        card_transition(card_id=card.pk, transition="suspend", caller=helpdesk)
        _publish()
        assert _cpsclient("deny-list", "sync", url, store=store).returncode == 0
        seen = _cpsclient("identify", "--reader", CONTACTLESS_READER, store=store)
        assert seen.returncode == 1 and "REFUSED" in seen.stdout and "suspended" in seen.stdout
        auth = _cpsclient(
            "contactless-auth", "--reader", CONTACTLESS_READER, "--key-file", str(key_file),
            store=store,
        )  # fmt: skip
        assert auth.returncode == 1 and "suspended" in auth.stdout

        pending = card_transition(card_id=card.pk, transition="reinstate", caller=helpdesk)
        card_transition_approve(
            approval_id=pending.approval.pk, caller=Caller.for_user(make_user("security_officer"))
        )
        _publish()
        assert _cpsclient("deny-list", "sync", url, store=store).returncode == 0
        seen = _cpsclient("identify", "--reader", CONTACTLESS_READER, store=store)
        assert seen.returncode == 0 and "ACCEPTED" in seen.stdout
