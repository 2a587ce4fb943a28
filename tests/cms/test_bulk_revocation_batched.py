"""The set-based revocation of a bulk revocation's batch (cms.services.cards.
cards_revoke_consequence, pki.services.certificates_revoke): the same rows and audit events as one
card at a time, no double revocation, the chain still verifies, and relying parties see the
certificates revoked in ``openssl ocsp`` and the CRL (PostgreSQL, the PKI on software keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cms.choices import CardStatus, RevokeReason
from cms.models import Card, DenyListChangeRow, DenyListEntry
from cms.services.cards import card_revoke_consequence, card_transition, cards_revoke_consequence
from core.audit import audit_chain_verify
from core.models import AuditEvent
from pki.models import Certificate, OcspResponse
from tests.cms.conftest import card_make

pytestmark = pytest.mark.django_db


def _population(cps4, link_certificates, helpdesk) -> list[tuple[Card, list[Certificate]]]:
    """An active card, a suspended one (certificates on hold, on the deny list), an issued one
    (certificates on hold), an active one with one certificate already revoked."""
    active = card_make(cps4, CardStatus.ACTIVE)
    suspended = card_make(cps4, CardStatus.ACTIVE)
    issued = card_make(cps4, CardStatus.ISSUED)
    partly = card_make(cps4, CardStatus.ACTIVE)
    cards = [
        (active, link_certificates(active)),
        (suspended, link_certificates(suspended)),
        (issued, link_certificates(issued, status="on_hold")),
        (partly, link_certificates(partly)),
    ]
    card_transition(card_id=suspended.pk, transition="suspend", caller=helpdesk)
    from pki import services
    from pki.domain.reasons import RevocationReason

    services.certificate_revoke(
        certificate_id=cards[3][1][0].pk,
        reason=RevocationReason.SUPERSEDED,
        actor=helpdesk.actor,
    )
    return cards


def _outcome(cards: list[tuple[Card, list[Certificate]]]) -> list[dict[str, Any]]:
    """What a revocation left, per card, with the card's own ids replaced by their position."""
    found = []
    for card, certs in cards:
        card.refresh_from_db()
        position = {cert.pk: f"cert{i}" for i, cert in enumerate(certs)}
        event = AuditEvent.objects.get(action="card.revoke", object_id=str(card.pk))
        details = dict(event.details)
        details.pop("card_number")
        details["revoked"] = [position[pk] for pk in details["revoked"]]
        entry = DenyListEntry.objects.get(card=card)
        certificates = []
        for cert in certs:
            cert.refresh_from_db()
            answer = OcspResponse.objects.get(certificate=cert)
            certificates.append(
                (cert.status, cert.revocation_reason, cert.crl_entry is not None, answer.status)
            )
        found.append(
            {
                "card": (card.status, card.revoke_reason),
                "details": details,
                "deny": entry.reason,
                "deny_changes": DenyListChangeRow.objects.filter(card=card).count(),
                "certificates": certificates,
                "certificate_events": sorted(
                    AuditEvent.objects.filter(
                        action="pki.certificate_revoke",
                        object_id__in=[str(c.pk) for c in certs],
                    ).values_list("details__reason", flat=True)
                ),
            }
        )
    return found


def test_a_batch_leaves_what_revoking_each_card_leaves(cps4, link_certificates, caller_for, system):
    helpdesk = caller_for("helpdesk_agent")
    one_by_one = _population(cps4, link_certificates, helpdesk)
    batched = _population(cps4, link_certificates, helpdesk)
    extra = {"bulk_revocation_id": 7}
    for card, _ in one_by_one:
        assert card_revoke_consequence(
            card_id=card.pk, reason=RevokeReason.COMPROMISED, caller=system, extra=extra
        )
    ids = [card.pk for card, _ in batched]
    revoked = cards_revoke_consequence(
        card_ids=ids, reason=RevokeReason.COMPROMISED, caller=system, extra=extra
    )
    assert sorted(revoked) == sorted(ids)
    expected = _outcome(one_by_one)
    assert _outcome(batched) == expected
    assert expected[1]["details"]["from"] == "SUSPENDED" and expected[1]["deny"] == "revoked"
    assert expected[3]["details"]["revoked"] == ["cert1"]  # the revoked one is not revoked again
    assert expected[0]["certificates"] == [("revoked", "key_compromise", True, "revoked")] * 2
    assert audit_chain_verify().ok


def test_a_batch_never_revokes_twice_and_skips_cards_out_of_service(
    cps4, link_certificates, system
):
    live = [card_make(cps4, CardStatus.ACTIVE) for _ in range(3)]
    certs = [cert for card in live for cert in link_certificates(card)]
    expired = card_make(cps4, CardStatus.EXPIRED)
    in_stock = card_make(cps4, CardStatus.IN_STOCK)
    ids = [card.pk for card in [*live, expired, in_stock]]
    first = cards_revoke_consequence(card_ids=ids, reason=RevokeReason.STRUCK_OFF, caller=system)
    assert sorted(first) == sorted(card.pk for card in live)
    events = AuditEvent.objects.count()
    answers = {a.certificate_id: a.der for a in OcspResponse.objects.all()}
    again = cards_revoke_consequence(card_ids=ids, reason=RevokeReason.COMPROMISED, caller=system)
    assert again == [] and AuditEvent.objects.count() == events
    assert {a.certificate_id: a.der for a in OcspResponse.objects.all()} == answers
    for cert in certs:
        cert.refresh_from_db()
        assert (cert.status, cert.revocation_reason) == ("revoked", "privilege_withdrawn")
    assert Card.objects.get(pk=expired.pk).status == CardStatus.EXPIRED
    assert Card.objects.get(pk=in_stock.pk).status == CardStatus.IN_STOCK
    assert DenyListChangeRow.objects.count() == 3
    assert AuditEvent.objects.filter(action="card.revoke").count() == 3
    assert AuditEvent.objects.filter(action="pki.certificate_revoke").count() == 6


def test_the_pki_batch_skips_revoked_certificates_and_refuses_a_hold(
    cps4, link_certificates, system
):
    from core.errors import BadInput
    from pki import services
    from pki.domain.reasons import RevocationReason

    certs = link_certificates(card_make(cps4, CardStatus.ACTIVE))
    ids = [cert.pk for cert in certs]
    with pytest.raises(BadInput):
        services.certificates_revoke(
            certificate_ids=ids, reason=RevocationReason.CERTIFICATE_HOLD, actor=system.actor
        )
    first = services.certificates_revoke(
        certificate_ids=ids[:1], reason=RevocationReason.KEY_COMPROMISE, actor=system.actor
    )
    both = services.certificates_revoke(
        certificate_ids=ids, reason=RevocationReason.AFFILIATION_CHANGED, actor=system.actor
    )
    assert [c.pk for c in first] == ids[:1] and [c.pk for c in both] == ids[1:]
    reasons = dict(Certificate.objects.filter(pk__in=ids).values_list("pk", "revocation_reason"))
    assert reasons == {ids[0]: "key_compromise", ids[1]: "affiliation_changed"}


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_bulk_revocation_shows_in_openssl_ocsp_and_the_delta_crl(
    cps4, link_certificates, client, live_server: Any, tmp_path: Path
):
    from cms.models import BulkRevocation
    from cms.services.bulk_revocation import bulk_revocation_run
    from core.actors import Actor
    from pki import services
    from pki.choices import CrlKind
    from pki.models import CertificateAuthority
    from tests.pki.helpers import ISSUING, ROOT, openssl, pem, write

    actor = Actor.system("tests")
    services.crl_publish(authority=ISSUING, kind=CrlKind.FULL, actor=actor)
    cards = [card_make(cps4, CardStatus.ACTIVE) for _ in range(3)]
    certs = [cert for card in cards for cert in link_certificates(card)]
    spared = link_certificates(card_make(cps4, CardStatus.ACTIVE))
    root = CertificateAuthority.objects.get(short_name=ROOT)
    issuing = CertificateAuthority.objects.get(short_name=ISSUING)
    issuing_pem = write(tmp_path / "issuing.pem", pem(issuing.certificate_der))
    write(tmp_path / "chain.pem", pem(root.certificate_der) + issuing_pem.read_bytes())

    bulk = BulkRevocation.objects.create(
        selection={"card_numbers": sorted(c.card_number for c in cards)},
        reason="compromised", act_id=0, total=3,
    )  # fmt: skip
    bulk = bulk_revocation_run(bulk_id=bulk.pk, batch_size=2)
    assert (bulk.revoked, bulk.status) == (3, "done")

    for cert, expected in [*((c, "revoked") for c in certs), (spared[0], "good")]:
        path = write(tmp_path / f"c{cert.pk}.pem", pem(cert.der))
        done = openssl(
            "ocsp", "-issuer", issuing_pem, "-cert", path, "-url", f"{live_server.url}/ocsp",
            "-CAfile", tmp_path / "chain.pem", "-no_nonce",
        )  # fmt: skip
        assert "Response verify OK" in done.stderr, done.stderr
        assert f"{path}: {expected}" in done.stdout, done.stdout
        if expected == "revoked":
            assert "keyCompromise" in done.stdout

    services.crl_publish(authority=ISSUING, kind=CrlKind.DELTA, actor=actor)
    delta = write(tmp_path / "delta.crl", client.get(f"/pki/crl/{ISSUING}-delta.crl").content)
    done = openssl("crl", "-inform", "DER", "-in", delta, "-CAfile", tmp_path / "chain.pem")
    assert "verify OK" in done.stderr + done.stdout
    text = openssl("crl", "-inform", "DER", "-in", delta, "-noout", "-text").stdout
    assert "Delta CRL Indicator" in text and text.count("Key Compromise") == 6
    listed = text.replace(":", "")
    assert all(f"{int(cert.serial):X}" in listed for cert in certs)
    assert f"{int(spared[0].serial):X}" not in listed
    assert audit_chain_verify().ok
