"""CRLs assembled from the entries stored at each status change (ADR 0003)."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.utils import timezone

from core.actors import Actor
from pki import authorities, services
from pki.choices import CrlKind
from pki.domain import builders, crl_der
from pki.domain.reasons import RevocationReason
from pki.models import Certificate, CertificateAuthority, CrlPublication
from tests.pki.helpers import ISSUING, holder
from tests.pki.keys_pool import rsa_key

ACTOR = Actor.system("tests")


def _issue(n: int) -> Certificate:
    return services.certificate_issue(
        authority=ISSUING,
        profile="cps_auth",
        public_key=rsa_key(f"holder{n}").public_key(),
        holder=holder(n),
        actor=ACTOR,
    )


def _rebuilt(publication: CrlPublication) -> bytes:
    """What cryptography's builder signs for the published entries, in their published order."""
    published = x509.load_der_x509_crl(bytes(publication.der))
    ca = CertificateAuthority.objects.get(short_name=ISSUING)
    issuer = authorities.authority_context((ca.pk, ca.created_at, ca.ocsp_responder_id)).issuer()
    return builders.build_crl_from_revoked(
        issuer_certificate=issuer.certificate,
        signing_key=issuer.key,
        revoked=list(published),
        number=publication.number,
        this_update=publication.this_update,
        next_update=publication.next_update,
        delta_base=publication.base_number,
        freshest_crl_url=None if publication.base_number else issuer.urls.delta_crl,
    ).public_bytes(serialization.Encoding.DER)


def _listed(publication: CrlPublication) -> dict[int, x509.ReasonFlags | None]:
    out: dict[int, x509.ReasonFlags | None] = {}
    for entry in x509.load_der_x509_crl(bytes(publication.der)):
        try:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            reason = None
        out[entry.serial_number] = reason
    return out


def test_published_full_and_delta_are_what_the_builder_signs(pki_software: str) -> None:
    a, b, c, d = (_issue(n) for n in range(1, 5))
    services.certificate_revoke(
        certificate_id=a.pk, reason=RevocationReason.KEY_COMPROMISE, actor=ACTOR
    )
    services.certificate_revoke(
        certificate_id=b.pk, reason=RevocationReason.UNSPECIFIED, actor=ACTOR
    )
    services.certificate_hold(certificate_id=c.pk, actor=ACTOR)
    full = services.crl_publish(authority=ISSUING, kind=CrlKind.FULL, actor=ACTOR)
    assert full.entry_count == 3
    assert bytes(full.der) == _rebuilt(full)
    assert _listed(full) == {
        a.serial_int: x509.ReasonFlags.key_compromise,
        b.serial_int: None,
        c.serial_int: x509.ReasonFlags.certificate_hold,
    }

    services.certificate_release_hold(certificate_id=c.pk, actor=ACTOR)
    services.certificate_revoke(
        certificate_id=d.pk, reason=RevocationReason.SUPERSEDED, actor=ACTOR
    )
    delta = services.crl_publish(authority=ISSUING, kind=CrlKind.DELTA, actor=ACTOR)
    assert delta.base_number == full.number
    assert bytes(delta.der) == _rebuilt(delta)
    assert _listed(delta) == {
        c.serial_int: x509.ReasonFlags.remove_from_crl,
        d.serial_int: x509.ReasonFlags.superseded,
    }
    second = services.crl_publish(authority=ISSUING, kind=CrlKind.FULL, actor=ACTOR)
    assert set(_listed(second)) == {a.serial_int, b.serial_int, d.serial_int}


def test_status_changes_store_and_clear_the_entry(pki_software: str) -> None:
    cert = _issue(1)
    assert Certificate.objects.get(pk=cert.pk).crl_entry is None
    held = services.certificate_hold(certificate_id=cert.pk, actor=ACTOR)
    assert held.hold_since is not None
    stored = Certificate.objects.get(pk=cert.pk).crl_entry
    expected = crl_der.crl_entry(
        cert.serial_int, held.hold_since, RevocationReason.CERTIFICATE_HOLD
    )
    assert stored is not None and bytes(stored) == expected
    services.certificate_release_hold(certificate_id=cert.pk, actor=ACTOR)
    assert Certificate.objects.get(pk=cert.pk).crl_entry is None
    revoked = services.certificate_revoke(
        certificate_id=cert.pk, reason=RevocationReason.CESSATION_OF_OPERATION, actor=ACTOR
    )
    assert revoked.revoked_at is not None
    stored = Certificate.objects.get(pk=cert.pk).crl_entry
    expected = crl_der.crl_entry(
        cert.serial_int, revoked.revoked_at, RevocationReason.CESSATION_OF_OPERATION
    )
    assert stored is not None and bytes(stored) == expected


def test_issued_on_hold_is_listed(pki_software: str) -> None:
    cert = services.certificate_issue(
        authority=ISSUING,
        profile="cps_auth",
        public_key=rsa_key("holder7").public_key(),
        holder=holder(7),
        on_hold=True,
        actor=ACTOR,
    )
    full = services.crl_publish(authority=ISSUING, kind=CrlKind.FULL, actor=ACTOR)
    assert _listed(full) == {cert.serial_int: x509.ReasonFlags.certificate_hold}


@pytest.mark.parametrize("kind", [CrlKind.FULL, CrlKind.DELTA])
def test_listed_rows_without_stored_entry_are_encoded_at_publication(
    pki_software: str, kind: CrlKind
) -> None:
    services.crl_publish(authority=ISSUING, kind=CrlKind.FULL, actor=ACTOR)
    ca = CertificateAuthority.objects.get(short_name=ISSUING)
    now = timezone.now()
    der = b"written by other code"
    row = Certificate.objects.create(
        issuer=ca,
        serial=Decimal((1 << 158) + 5),
        profile="cps_auth",
        status="revoked",
        subject="CN=x",
        not_before=now,
        not_after=now + dt.timedelta(days=1),
        der=der,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        revoked_at=now,
        revocation_reason="affiliation_changed",
        status_changed_at=now,
    )
    assert row.crl_entry is None
    published = services.crl_publish(authority=ISSUING, kind=kind, actor=ACTOR)
    assert _listed(published) == {row.serial_int: x509.ReasonFlags.affiliation_changed}
    assert bytes(published.der) == _rebuilt(published)
