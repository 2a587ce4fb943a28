"""A CPS4 personalized end to end in process: station relay → API views → session → virtual card."""

from __future__ import annotations

import pytest
from cryptography import x509

from tests.cms.personalization.conftest import card_queued, link_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_queued_card_is_personalized_and_issued(scene, virtual_card):
    from cms.choices import CardStatus, RequestStatus
    from cms.models import Card, CardCertificate, PersonalizationSession, PinMailer
    from core.models import AuditEvent
    from personalization_station.relay import personalize
    from pki.choices import CertificateStatus

    request = card_queued(scene, virtual_card)
    lines: list[str] = []
    outcome = personalize(scene.api(), link_of(virtual_card), progress=lines.append)

    assert outcome.state == "done", outcome.message
    assert outcome.round_trips <= 12
    request.refresh_from_db()
    assert request.status == RequestStatus.DONE
    card = Card.objects.get(pk=request.card_id)
    assert card.status == CardStatus.ISSUED
    links = CardCertificate.objects.filter(card=card).select_related("certificate")
    assert sorted(link.slot for link in links) == ["auth", "sign"]
    for link in links:
        assert link.certificate.status == CertificateStatus.ON_HOLD
        cert = x509.load_der_x509_certificate(bytes(link.certificate.der))
        cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        assert cn == card.holder.national_id
    session = PersonalizationSession.objects.get(card=card)
    assert session.status == "done"
    assert session.sealed_secrets is None  # PIN and PUK dropped once the card is issued
    assert session.checkpoint["completed"][-1] == "desfire_verified"
    assert session.phase == "desfire_verified" and session.ended_at is not None
    # the round trips' counters, added to by each round trip's one UPDATE
    assert session.apdus == outcome.apdus
    assert session.batches == session.seq == outcome.round_trips - 1  # the claim's + exchanges'
    assert session.server_cpu_ms > 0
    job = session.job
    assert job.status == "done" and job.lease_expires_at is None
    assert card.admin_key_version == int(session.key_versions["admin"])
    mailer = PinMailer.objects.get(card=card)
    assert mailer.status == "queued" and mailer.sealed_secrets is not None
    assert b"pin" not in bytes(mailer.sealed_secrets)  # sealed, not JSON in clear
    assert AuditEvent.objects.filter(action="personalization.complete").count() == 1
    assert any("phases" in line for line in lines)
