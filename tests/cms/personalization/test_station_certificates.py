"""A station's certificate is revoked when it is replaced (re-enrollment) or the station
is disabled, once."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def station_csr() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "station")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def _enroll_with_certificate(scene: Any, csr: bytes, name: str = "bench-c") -> Any:
    from cms.personalization.stations import station_create, station_enroll
    from demo import setup

    issued = station_create(site_code=scene.pool.code, name=name, caller=setup.SYSTEM)
    return station_enroll(code=issued.code, csr_pem=csr)


def test_re_enrollment_revokes_the_previous_station_certificate_as_superseded(scene, station_csr):
    from cms.personalization.stations import station_code_renew, station_enroll
    from core.models import AuditEvent
    from demo import setup
    from pki.models import Certificate

    first = _enroll_with_certificate(scene, station_csr)
    old_id = first.station.certificate_id
    assert old_id is not None
    renewed = station_code_renew(station_id=first.station.pk, caller=setup.SYSTEM)
    second = station_enroll(code=renewed.code, csr_pem=station_csr)

    old = Certificate.objects.get(pk=old_id)
    assert old.status == "revoked" and old.revocation_reason == "superseded"
    new = Certificate.objects.get(pk=second.station.certificate_id)
    assert new.status == "valid" and new.pk != old.pk
    assert second.station.certificate_serial == format(int(new.serial), "X")
    event = AuditEvent.objects.filter(action="station.enroll").order_by("-seq").first()
    assert event is not None
    assert event.details["certificate_revoked"] == format(int(old.serial), "X")
    assert AuditEvent.objects.filter(
        action="pki.certificate_revoke", object_id=str(old.pk)
    ).exists()


def test_re_enrollment_without_a_csr_still_revokes_the_old_certificate(scene, station_csr):
    from cms.personalization.stations import station_code_renew, station_enroll
    from demo import setup
    from pki.models import Certificate

    first = _enroll_with_certificate(scene, station_csr)
    old_id = first.station.certificate_id
    renewed = station_code_renew(station_id=first.station.pk, caller=setup.SYSTEM)
    second = station_enroll(code=renewed.code)
    assert Certificate.objects.get(pk=old_id).status == "revoked"
    assert second.station.certificate_id is None and second.station.certificate_serial == ""


def test_disabling_a_station_revokes_its_certificate_once(scene, station_csr):
    from cms.personalization.stations import station_disable
    from core.models import AuditEvent
    from demo import setup
    from pki.models import Certificate

    enrolled = _enroll_with_certificate(scene, station_csr)
    cert_id = enrolled.station.certificate_id
    station_disable(station_id=enrolled.station.pk, caller=setup.SYSTEM)
    station_disable(station_id=enrolled.station.pk, caller=setup.SYSTEM)  # a no-op

    cert = Certificate.objects.get(pk=cert_id)
    assert cert.status == "revoked" and cert.revocation_reason == "cessation_of_operation"
    assert AuditEvent.objects.filter(action="pki.certificate_revoke").count() == 1
    event = AuditEvent.objects.get(action="station.disable")
    assert event.details["certificate_revoked"] == format(int(cert.serial), "X")
