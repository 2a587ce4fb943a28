"""The relying party's verifier kit against an issued card and the published deny list:
issue → identify / contactless-auth / session OK; suspend + sync → identify refused, the
session ends; reinstate + sync → accepted again. The deny list is fetched over HTTP from the
live server and verified with OpenSSL; a changed byte or an older version is refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from cpsclient import contactless, denylist, identify, session
from cpsclient.errors import ClientError, DenyListRefused
from tests.cms.personalization.conftest import card_queued, link_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def root_pem(pki_software, tmp_path: Path) -> Path:
    from pki.models import CertificateAuthority

    root = CertificateAuthority.objects.get(short_name="ACR-FO-TEST")
    path = tmp_path / "root.pem"
    cert = x509.load_der_x509_certificate(bytes(root.certificate_der))
    path.write_bytes(cert.public_bytes(Encoding.PEM))
    return path


def _publish() -> int:
    from cms.contactless.services import deny_list_publish
    from core.actors import Actor

    done = deny_list_publish(actor=Actor.system("tests"), force=True)
    assert done is not None
    return done.version


def _read_master() -> bytes:
    # What the relying party was given (the wrapped export unwraps to this): key 1's master.
    from cms.personalization.keys import card_key_store
    from pki.keys.symmetric import master_label

    return card_key_store()._key(master_label("desfire-app-1", 1))  # type: ignore[attr-defined]


def test_issue_suspend_reinstate_through_the_kit(
    scene, virtual_card, make_user, root_pem, live_server, tmp_path
):
    from cms.callers import Caller
    from cms.models import Card
    from cms.services.cards import card_transition, card_transition_approve
    from personalization_station.relay import personalize

    card_queued(scene, virtual_card)
    assert personalize(scene.api(), link_of(virtual_card)).state == "done"
    card = Card.objects.get(chip_serial=virtual_card.serial.hex().upper())
    helpdesk = Caller.for_user(make_user("helpdesk_agent"))
    card_transition(card_id=card.pk, transition="activate", caller=helpdesk)
    _publish()

    store = tmp_path / "store"
    store.mkdir()
    url = f"{live_server.url}/contactless/deny-list"
    deny = denylist.sync(url, store=store, ca_file=root_pem)
    reader = link_of(virtual_card).contactless
    master = _read_master()
    now = dt.datetime.now(dt.UTC)

    uid, reason = identify.identify(reader, deny)
    assert (uid, reason) == (card.desfire_uid, None)
    identity = contactless.contactless_auth(reader, master=master)
    assert (identity.uid, identity.card_number) == (card.desfire_uid, card.card_number)
    assert identity.national_id == card.holder.national_id
    assert contactless.check(identity, deny) is None
    session.session_bind(
        store,
        contact_card_number=card.card_number,
        identity=identity,
        deny=deny,
        window=dt.timedelta(hours=8),
        now=now,
    )
    assert session.session_tap(store, identity=identity, deny=deny, now=now)[0]

    # A wrong read master: the card refuses the authentication.
    with pytest.raises(ClientError, match="contactless authentication failed"):
        contactless.contactless_auth(reader, master=bytes(16))

    card_transition(card_id=card.pk, transition="suspend", caller=helpdesk)
    _publish()
    deny = denylist.sync(url, store=store, ca_file=root_pem)
    assert identify.identify(reader, deny) == (card.desfire_uid, "suspended")
    identity = contactless.contactless_auth(reader, master=master)
    accepted, why = session.session_tap(store, identity=identity, deny=deny, now=now)
    assert not accepted and "session ended" in why
    assert session.session_load(store) is None

    pending = card_transition(card_id=card.pk, transition="reinstate", caller=helpdesk).approval
    card_transition_approve(
        approval_id=pending.pk, caller=Caller.for_user(make_user("security_officer"))
    )
    _publish()
    deny = denylist.sync(url, store=store, ca_file=root_pem)
    assert identify.identify(reader, deny) == (card.desfire_uid, None)
    assert denylist.load(store).version == deny.version == 3  # v1, then two deltas


def test_tampered_and_rolled_back_lists_are_refused(pki_software, root_pem, tmp_path):
    from cms.contactless import selectors
    from cms.models import DenyListPublication

    _publish()
    _publish()
    served = tmp_path / "served"
    served.mkdir()
    store = tmp_path / "store"
    store.mkdir()
    base = served.as_uri()

    (served / "full.p7m").write_bytes(bytes(selectors.deny_list_full_latest().der))
    assert denylist.sync(base, store=store, ca_file=root_pem).version == 2

    # one byte changed in the signed content
    tampered = bytearray(DenyListPublication.objects.get(version=2, kind="full").der)
    at = tampered.index(b'"entries":[]')
    tampered[at + 1] = ord("E")
    (served / "full.p7m").write_bytes(bytes(tampered))
    with pytest.raises(DenyListRefused, match="signature"):
        denylist.sync(base, store=store, ca_file=root_pem, full=True)

    # an older, validly signed version: a rollback
    (served / "full.p7m").write_bytes(bytes(selectors.deny_list_full_get(1).der))
    with pytest.raises(DenyListRefused, match="rollback"):
        denylist.sync(base, store=store, ca_file=root_pem, full=True)

    # a replayed delta that does not follow the local version
    (served / "full.p7m").write_bytes(bytes(selectors.deny_list_full_latest().der))
    (served / "delta-2.p7m").write_bytes(bytes(selectors.deny_list_delta_since(1).der))
    with pytest.raises(DenyListRefused, match="does not follow"):
        denylist.sync(base, store=store, ca_file=root_pem)
    assert denylist.load(store).version == 2  # nothing refused was kept
