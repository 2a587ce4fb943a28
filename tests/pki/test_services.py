from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509

from core.actors import Actor
from core.errors import BadInput, Conflict, NotFound, PolicyViolation, ServiceUnavailable
from core.models import AuditEvent
from pki import services
from pki.choices import CertificateStatus, CrlKind
from pki.domain.reasons import RevocationReason
from pki.models import Certificate, CertificateAuthority, CrlPublication, OcspResponse
from tests.pki.helpers import ISSUING, csr_pem, holder
from tests.pki.keys_pool import rsa_key

ACTOR = Actor.system("tests")


def _issue(profile: str = "cps_auth", *, on_hold: bool = False, n: int = 1) -> Certificate:
    return services.certificate_issue(
        authority=ISSUING,
        profile=profile,
        public_key=rsa_key(f"holder{n}").public_key(),
        holder=holder(n),
        on_hold=on_hold,
        actor=ACTOR,
    )


def test_pki_init_twice_changes_nothing(pki_software: str) -> None:
    from django.core.management import call_command

    from tests.pki.conftest import TEST_HIERARCHY

    before = list(CertificateAuthority.objects.values_list("short_name", "certificate_der"))
    events = AuditEvent.objects.count()
    out = __import__("io").StringIO()
    call_command("pki_init", config=str(TEST_HIERARCHY), backend="software", stdout=out)
    assert "nothing changed" in out.getvalue()
    assert list(CertificateAuthority.objects.values_list("short_name", "certificate_der")) == before
    assert AuditEvent.objects.count() == events
    assert len(before) == 3
    assert CertificateAuthority.objects.filter(ocsp_responder__isnull=False).count() == 2


def test_pki_init_names_a_database_whose_ca_keys_are_elsewhere(pki_software: str) -> None:
    from django.core.management import CommandError, call_command

    from tests.pki.conftest import TEST_HIERARCHY

    root = CertificateAuthority.objects.get(kind="root")
    CertificateAuthority.objects.filter(pk=root.pk).update(key_handle="made-by-another-checkout")
    with pytest.raises(CommandError, match=f"CA {root.short_name} is in this database but its key"):
        call_command("pki_init", config=str(TEST_HIERARCHY), backend="software")


def test_issue_stores_row_audit_and_ocsp(
    pki_software: str, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        cert = _issue()
    parsed = x509.load_der_x509_certificate(bytes(cert.der))
    assert int(cert.serial) == parsed.serial_number
    assert parsed.serial_number.bit_length() >= 127
    assert cert.status == CertificateStatus.VALID
    assert cert.holder["national_id"] == "810002813801"
    assert AuditEvent.objects.filter(
        action="pki.certificate_issue", object_id=str(cert.pk)
    ).exists()
    assert OcspResponse.objects.get(certificate=cert).status == CertificateStatus.VALID


def test_issue_from_csr_for_a_station(pki_software: str) -> None:
    cert = services.certificate_issue(
        authority="ACI-FO-TECH-TEST",
        profile="station_client",
        csr=csr_pem("station", "station-01"),
        actor=ACTOR,
    )
    assert "CN=station-01" in cert.subject


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"csr": b"not a csr"}, BadInput, "PKCS#10"),
        ({"profile": "cps_nope"}, PolicyViolation, "unknown profile"),
        ({"profile": "station_client", "common_name": "x"}, PolicyViolation, "does not issue"),
        ({"authority": "NOPE"}, NotFound, "NOPE"),
    ],
)
def test_bad_issuance_leaves_no_row(
    pki_software: str, kwargs: dict[str, Any], error: type[Exception], text: str
) -> None:
    args: dict[str, Any] = {
        "authority": ISSUING,
        "profile": "cps_auth",
        "holder": holder(),
        "actor": ACTOR,
    }
    args.update(kwargs)
    if "csr" not in args:
        args["public_key"] = rsa_key("holder").public_key()
    before = (Certificate.objects.count(), AuditEvent.objects.count())
    with pytest.raises(error, match=text):
        services.certificate_issue(**args)
    assert (Certificate.objects.count(), AuditEvent.objects.count()) == before


def test_small_card_key_is_a_policy_violation(pki_software: str) -> None:
    with pytest.raises(PolicyViolation) as err:
        services.certificate_issue(
            authority=ISSUING,
            profile="cps_auth",
            public_key=rsa_key("small", 1024).public_key(),
            holder=holder(),
            actor=ACTOR,
        )
    assert err.value.extra == {"rule": "key.size"}


def test_revoke_then_revoke_again_is_a_conflict(pki_software: str) -> None:
    cert = _issue()
    services.certificate_revoke(
        certificate_id=cert.pk, reason=RevocationReason.KEY_COMPROMISE, actor=ACTOR
    )
    events = AuditEvent.objects.count()
    with pytest.raises(Conflict, match="already revoked"):
        services.certificate_revoke(
            certificate_id=cert.pk, reason=RevocationReason.SUPERSEDED, actor=ACTOR
        )
    cert.refresh_from_db()
    assert cert.revocation_reason == "key_compromise"
    assert AuditEvent.objects.count() == events


def test_revoke_with_hold_reason_is_bad_input(pki_software: str) -> None:
    cert = _issue()
    with pytest.raises(BadInput):
        services.certificate_revoke(
            certificate_id=cert.pk, reason=RevocationReason.CERTIFICATE_HOLD, actor=ACTOR
        )


def test_hold_twice_and_release_twice_are_noops(pki_software: str) -> None:
    cert = _issue()
    services.certificate_hold(certificate_id=cert.pk, actor=ACTOR)
    events = AuditEvent.objects.count()
    again = services.certificate_hold(certificate_id=cert.pk, actor=ACTOR)
    assert again.status == CertificateStatus.ON_HOLD
    assert AuditEvent.objects.count() == events
    services.certificate_release_hold(certificate_id=cert.pk, actor=ACTOR)
    services.certificate_release_hold(certificate_id=cert.pk, actor=ACTOR)
    assert AuditEvent.objects.count() == events + 1


def test_revoked_cannot_be_held_or_released(pki_software: str) -> None:
    cert = _issue()
    services.certificate_revoke(
        certificate_id=cert.pk, reason=RevocationReason.SUPERSEDED, actor=ACTOR
    )
    events = AuditEvent.objects.count()
    with pytest.raises(Conflict, match="is revoked; it cannot be put on hold"):
        services.certificate_hold(certificate_id=cert.pk, actor=ACTOR)
    with pytest.raises(Conflict, match="is revoked; it cannot be released"):
        services.certificate_release_hold(certificate_id=cert.pk, actor=ACTOR)
    cert.refresh_from_db()
    assert (cert.status, cert.revocation_reason) == (CertificateStatus.REVOKED, "superseded")
    assert AuditEvent.objects.count() == events


def test_unknown_certificate_is_not_found(pki_software: str) -> None:
    with pytest.raises(NotFound):
        services.certificate_hold(certificate_id=999_999, actor=ACTOR)


def test_crl_numbers_are_monotonic_and_delta_needs_a_base(pki_software: str) -> None:
    with pytest.raises(Conflict, match="full CRL first"):
        services.crl_publish(authority=ISSUING, kind=CrlKind.DELTA, actor=ACTOR)
    full = services.crl_publish(authority=ISSUING, kind=CrlKind.FULL, actor=ACTOR)
    delta = services.crl_publish(authority=ISSUING, kind=CrlKind.DELTA, actor=ACTOR)
    assert delta.number == full.number + 1
    assert delta.base_number == full.number
    assert CrlPublication.objects.filter(authority__short_name=ISSUING).count() == 2


def test_hold_release_appears_as_remove_from_crl(pki_software: str) -> None:
    cert = _issue(on_hold=True)
    full = services.crl_publish(authority=ISSUING, kind=CrlKind.FULL, actor=ACTOR)
    listed = x509.load_der_x509_crl(bytes(full.der)).get_revoked_certificate_by_serial_number(
        int(cert.serial)
    )
    assert listed is not None
    reason = listed.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.certificate_hold
    services.certificate_release_hold(certificate_id=cert.pk, actor=ACTOR)
    delta = services.crl_publish(authority=ISSUING, kind=CrlKind.DELTA, actor=ACTOR)
    entry = x509.load_der_x509_crl(bytes(delta.der)).get_revoked_certificate_by_serial_number(
        int(cert.serial)
    )
    assert entry is not None
    removed = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert removed is x509.ReasonFlags.remove_from_crl


def test_backend_down_is_service_unavailable_and_writes_nothing(
    pki_software: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pki import key_backends
    from tests.pki.conftest import PASSPHRASE_ENV

    for backend in key_backends._instances.values():
        backend.close()
    monkeypatch.delenv(PASSPHRASE_ENV)
    before = (Certificate.objects.count(), AuditEvent.objects.count())
    with pytest.raises(ServiceUnavailable, match=PASSPHRASE_ENV):
        _issue()
    with pytest.raises(ServiceUnavailable):
        services.crl_publish(authority=ISSUING, kind=CrlKind.FULL, actor=ACTOR)
    assert (Certificate.objects.count(), AuditEvent.objects.count()) == before
