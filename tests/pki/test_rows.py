"""Certificate rows written by the services' raw INSERT hold what the ORM would have written."""

from __future__ import annotations

from core.actors import Actor
from pki import services
from pki.choices import CertificateStatus
from pki.domain.status import CertificateState
from pki.models import Certificate, OcspResponse
from tests.pki.helpers import ISSUING, holder
from tests.pki.keys_pool import rsa_key

ACTOR = Actor.system("tests")


def test_certificate_statuses_are_the_domain_states():
    assert CertificateStatus.values == [s.value for s in CertificateState]


def test_an_issued_row_reads_back_field_for_field(pki_software: str) -> None:
    issued = services.certificate_issue(
        authority=ISSUING,
        profile="cps_auth",
        public_key=rsa_key("rows").public_key(),
        holder=holder(3),
        on_hold=True,
        actor=ACTOR,
    )
    stored = Certificate.objects.get(pk=issued.pk)
    for field in Certificate._meta.concrete_fields:
        value, expected = getattr(stored, field.attname), getattr(issued, field.attname)
        if isinstance(value, memoryview):
            value = bytes(value)
        assert value == expected, field.name
    assert stored.crl_entry is not None  # issued on hold: listed from the start
    answer = OcspResponse.objects.get(certificate=stored)
    assert (answer.authority_id, answer.serial, answer.status) == (
        stored.issuer_id,
        stored.serial,
        CertificateStatus.ON_HOLD,
    )
