from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from pki.domain import builders, extensions, names
from pki.domain.errors import MalformedRequest, ProfileViolation
from pki.domain.profiles import MS_SMARTCARD_LOGON, MS_UPN, PROFILES
from pki.domain.reasons import RevocationReason
from pki.domain.status import OcspStatus
from tests.pki.domain.conftest import NOW, counter_rng, issued
from tests.pki.keys_pool import rsa_key


def _issuer(hierarchy: dict[str, Any]) -> builders.Issuer:
    issuer = hierarchy["issuing"]
    assert isinstance(issuer, builders.Issuer)
    return issuer


def _verify(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    cert.verify_directly_issued_by(issuer)


def test_serials_are_positive_with_159_bits() -> None:
    rng = counter_rng()
    serials = {builders.random_serial(rng) for _ in range(5)}
    assert len(serials) == 5
    assert all(s.bit_length() == 159 for s in serials)


def test_auth_certificate_extensions(hierarchy: dict[str, Any], holder: names.Holder) -> None:
    cert = issued(hierarchy, holder, "cps_auth")
    issuer = _issuer(hierarchy)
    _verify(cert, issuer.certificate)
    ext = cert.extensions
    ku = ext.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature
    assert not ku.value.content_commitment
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH, MS_SMARTCARD_LOGON]
    san = ext.get_extension_for_class(x509.SubjectAlternativeName).value
    other = san.get_values_for_type(x509.OtherName)
    assert other[0].type_id == MS_UPN
    assert other[0].value == b"\x0c\x19810002813839@carte-cps.fr"
    bc = ext.get_extension_for_class(x509.BasicConstraints)
    assert bc.value.ca is False
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    issuer_ski = issuer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.key_identifier == issuer_ski.value.digest
    cdp = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name == [x509.UniformResourceIdentifier(issuer.urls.crl)]
    fresh = ext.get_extension_for_class(x509.FreshestCRL).value
    assert fresh[0].full_name == [x509.UniformResourceIdentifier(issuer.urls.delta_crl)]
    aia = ext.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == [issuer.urls.ocsp, issuer.urls.ca_issuers]
    oids = {e.oid.dotted_string: e for e in ext}
    assert oids["1.2.250.1.71.1.2.5"].value.value == bytes.fromhex("040180")
    assert oids["1.2.250.1.71.1.2.2"].value.value == bytes.fromhex("020100")
    assert oids["1.2.250.1.71.1.2.3"].value.value == b"\x13\x158025000001/2600301752"
    assert oids["1.2.250.1.71.1.2.7"].value.value == bytes.fromhex("02010a")
    assert cert.not_valid_after_utc == cert.not_valid_before_utc.replace(year=2028)
    assert ExtensionOID.PRIVATE_KEY_USAGE_PERIOD.dotted_string not in oids


def test_sign_certificate_extensions(hierarchy: dict[str, Any], holder: names.Holder) -> None:
    cert = issued(hierarchy, holder, "cps_sign")
    ext = cert.extensions
    ku = ext.get_extension_for_class(x509.KeyUsage).value
    assert ku.content_commitment
    assert not ku.digital_signature
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    san = ext.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == [holder.email]
    pkup = ext.get_extension_for_class(x509.PrivateKeyUsagePeriod).value
    assert pkup.not_before == cert.not_valid_before_utc.replace(tzinfo=None)
    assert pkup.not_after == cert.not_valid_after_utc.replace(tzinfo=None)


def test_ocsp_responder_has_nocheck(hierarchy: dict[str, Any]) -> None:
    cert = builders.build_certificate(
        profile=PROFILES["ocsp_responder"],
        public_key=rsa_key("responder").public_key(),
        subject=names.technical_subject(common_name="OCSP ACI-FO-PP", organisation="ASIP-SANTE"),
        serial=7,
        now=NOW,
        issuer=_issuer(hierarchy),
    )
    assert cert.extensions.get_extension_for_class(x509.OCSPNoCheck)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]


def test_issuing_ca_has_path_len_zero(hierarchy: dict[str, Any]) -> None:
    sub = _issuer(hierarchy).certificate
    bc = sub.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical
    assert bc.value.ca
    assert bc.value.path_length == 0
    _verify(sub, hierarchy["root"])


def test_only_ca_profiles_self_sign(holder: names.Holder) -> None:
    with pytest.raises(ProfileViolation) as err:
        builders.build_certificate(
            profile=PROFILES["cps_auth"],
            public_key=rsa_key("holder").public_key(),
            subject=names.holder_subject(holder),
            serial=3,
            now=NOW,
            issuer=None,
            self_signing_key=rsa_key("holder"),
            holder=holder,
        )
    assert err.value.rule == "issuer.required"


def _entries() -> list[builders.CrlEntry]:
    return [
        builders.CrlEntry(11, NOW, RevocationReason.KEY_COMPROMISE),
        builders.CrlEntry(12, NOW, RevocationReason.UNSPECIFIED),
        builders.CrlEntry(13, NOW, RevocationReason.CERTIFICATE_HOLD),
    ]


def test_full_crl(hierarchy: dict[str, Any]) -> None:
    issuer = _issuer(hierarchy)
    crl = builders.build_crl(
        issuer_certificate=issuer.certificate,
        signing_key=issuer.key,
        entries=_entries(),
        number=5,
        this_update=NOW,
        next_update=NOW + dt.timedelta(days=1),
        freshest_crl_url=issuer.urls.delta_crl,
    )
    assert crl.is_signature_valid(issuer.certificate.public_key())  # type: ignore[arg-type]
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 5
    assert crl.extensions.get_extension_for_class(x509.FreshestCRL)
    by_serial = {r.serial_number: r for r in crl}
    reason = by_serial[11].extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.key_compromise
    assert len(by_serial[12].extensions) == 0
    hold = by_serial[13].extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert hold is x509.ReasonFlags.certificate_hold


def test_delta_crl_carries_remove_from_crl(hierarchy: dict[str, Any]) -> None:
    issuer = _issuer(hierarchy)
    crl = builders.build_crl(
        issuer_certificate=issuer.certificate,
        signing_key=issuer.key,
        entries=[builders.CrlEntry(13, NOW, RevocationReason.REMOVE_FROM_CRL)],
        number=6,
        this_update=NOW,
        next_update=NOW + dt.timedelta(hours=4),
        delta_base=5,
    )
    indicator = crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    assert indicator.critical
    assert indicator.value.crl_number == 5
    entry = crl.get_revoked_certificate_by_serial_number(13)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.remove_from_crl


def test_full_crl_refuses_remove_from_crl(hierarchy: dict[str, Any]) -> None:
    issuer = _issuer(hierarchy)
    with pytest.raises(ProfileViolation) as err:
        builders.build_crl(
            issuer_certificate=issuer.certificate,
            signing_key=issuer.key,
            entries=[builders.CrlEntry(13, NOW, RevocationReason.REMOVE_FROM_CRL)],
            number=6,
            this_update=NOW,
            next_update=NOW,
        )
    assert err.value.rule == "crl.remove_from_crl"


def test_ocsp_response_answers_a_request(hierarchy: dict[str, Any], holder: names.Holder) -> None:
    issuer = _issuer(hierarchy)
    cert = issued(hierarchy, holder, "cps_auth")
    responder = builders.build_certificate(
        profile=PROFILES["ocsp_responder"],
        public_key=rsa_key("responder").public_key(),
        subject=names.technical_subject(common_name="OCSP", organisation="ASIP-SANTE"),
        serial=8,
        now=NOW,
        issuer=issuer,
    )
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, issuer.certificate, hashes.SHA1())
        .add_extension(x509.OCSPNonce(b"0123456789abcdef"), critical=False)
        .build()
    )
    query = builders.parse_ocsp_request(request.public_bytes(serialization.Encoding.DER))
    assert query.serial == cert.serial_number
    assert query.nonce == b"0123456789abcdef"
    assert (query.issuer_name_hash, query.issuer_key_hash) == builders.issuer_hashes(
        issuer.certificate
    )
    response = builders.build_ocsp_response(
        issuer_certificate=issuer.certificate,
        serial=cert.serial_number,
        status=OcspStatus.REVOKED,
        responder_certificate=responder,
        responder_key=rsa_key("responder"),
        this_update=NOW,
        next_update=NOW + dt.timedelta(hours=1),
        revoked_at=NOW,
        reason=RevocationReason.CERTIFICATE_HOLD,
    )
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is x509.ReasonFlags.certificate_hold
    assert response.issuer_key_hash == query.issuer_key_hash
    assert response.serial_number == cert.serial_number


def _responder_signer(issuer: builders.Issuer) -> builders.OcspSigner:
    responder = builders.build_certificate(
        profile=PROFILES["ocsp_responder"],
        public_key=rsa_key("responder").public_key(),
        subject=names.technical_subject(common_name="OCSP", organisation="ASIP-SANTE"),
        serial=8,
        now=NOW,
        issuer=issuer,
    )
    return builders.OcspSigner(issuer.certificate, responder, rsa_key("responder"))


def test_ocsp_answer_sign_presigned_form(hierarchy: dict[str, Any], holder: names.Holder) -> None:
    issuer = _issuer(hierarchy)
    cert = issued(hierarchy, holder, "cps_auth")
    signer = _responder_signer(issuer)
    answer = builders.ocsp_answer_sign(
        signer,
        serial=cert.serial_number,
        status=OcspStatus.REVOKED,
        revoked_at=NOW,
        reason=RevocationReason.KEY_COMPROMISE,
        now=NOW + dt.timedelta(microseconds=654321),
        validity=dt.timedelta(hours=24),
    )
    assert answer.this_update == NOW
    assert answer.next_update == NOW + dt.timedelta(hours=24)
    response = ocsp.load_der_ocsp_response(answer.der)
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.serial_number == cert.serial_number
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is x509.ReasonFlags.key_compromise
    assert response.this_update_utc == answer.this_update
    assert response.next_update_utc == answer.next_update
    assert isinstance(response.hash_algorithm, hashes.SHA1)
    assert (response.issuer_name_hash, response.issuer_key_hash) == builders.issuer_hashes(
        issuer.certificate
    )
    with pytest.raises(x509.ExtensionNotFound):
        response.extensions.get_extension_for_class(x509.OCSPNonce)
    responder = response.certificates[0]
    assert responder == signer.responder_certificate
    public_key = responder.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert response.signature_hash_algorithm is not None
    public_key.verify(
        response.signature,
        response.tbs_response_bytes,
        padding.PKCS1v15(),
        response.signature_hash_algorithm,
    )


def test_ocsp_answer_sign_mirrors_a_request(
    hierarchy: dict[str, Any], holder: names.Holder
) -> None:
    issuer = _issuer(hierarchy)
    cert = issued(hierarchy, holder, "cps_auth")
    answer = builders.ocsp_answer_sign(
        _responder_signer(issuer),
        serial=cert.serial_number,
        status=OcspStatus.GOOD,
        revoked_at=None,
        reason=None,
        now=NOW,
        validity=dt.timedelta(hours=1),
        cert_id_hash="sha256",
        nonce=b"0123456789abcdef",
    )
    response = ocsp.load_der_ocsp_response(answer.der)
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert isinstance(response.hash_algorithm, hashes.SHA256)
    nonce = response.extensions.get_extension_for_class(x509.OCSPNonce)
    assert nonce.value.nonce == b"0123456789abcdef"
    assert answer.next_update - answer.this_update == dt.timedelta(hours=1)


@pytest.mark.parametrize("data", [b"", b"\x30\x03\x02\x01\x01", b"garbage" * 10])
def test_malformed_ocsp_requests_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedRequest):
        builders.parse_ocsp_request(data)


def test_csr_with_bad_signature_is_refused(holder: names.Holder) -> None:
    key = rsa_key("holder")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(names.holder_subject(holder))
        .sign(key, hashes.SHA256())
    )
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0xFF
    assert builders.parse_csr(csr.public_bytes(serialization.Encoding.PEM)) == csr
    with pytest.raises(MalformedRequest, match="signature"):
        builders.parse_csr(bytes(der))
    with pytest.raises(MalformedRequest, match="PKCS#10"):
        builders.parse_csr(b"-----BEGIN CERTIFICATE REQUEST-----\nnope\n")


def test_software_category_encoding() -> None:
    ext = extensions.product_category(extensions.ProductCategory.SOFTWARE)
    assert ext.value == bytes.fromhex("040103")


def test_extensions_kept_per_process_follow_the_issuer_policies_and_category(
    hierarchy: dict[str, Any], holder: names.Holder
) -> None:
    """What build_certificate keeps per process is keyed by all it is made of: another issuer
    URL set, policy or product category gives another certificate, the same inputs the same."""
    issuer = _issuer(hierarchy)
    moved = builders.Issuer(
        issuer.certificate,
        issuer.key,
        builders.RevocationUrls(
            crl="http://elsewhere.test/a.crl",
            delta_crl="http://elsewhere.test/a-delta.crl",
            ocsp="http://elsewhere.test/ocsp",
            ca_issuers="http://elsewhere.test/a.cer",
        ),
    )

    def build(
        on: builders.Issuer, oid: str, category: extensions.ProductCategory
    ) -> x509.Certificate:
        return builders.build_certificate(
            profile=PROFILES["cps_auth"],
            public_key=rsa_key("holder").public_key(),
            subject=names.holder_subject(holder),
            serial=7,
            now=NOW,
            issuer=on,
            holder=holder,
            policies=[builders.PolicySpec(oid)],
            category=category,
        )

    test_card = extensions.ProductCategory.TEST_CARD
    first = build(issuer, "1.2.250.1.213.1.7.2.1.1.1.1", test_card)
    assert build(issuer, "1.2.250.1.213.1.7.2.1.1.1.1", test_card) == first
    elsewhere = build(moved, "1.2.250.1.213.1.7.2.1.1.1.1", test_card).extensions
    cdp = elsewhere.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name == [x509.UniformResourceIdentifier("http://elsewhere.test/a.crl")]
    aia = elsewhere.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == [
        "http://elsewhere.test/ocsp",
        "http://elsewhere.test/a.cer",
    ]
    other_policy = build(issuer, "1.2.250.1.213.1.7.2.1.1.1.2", test_card).extensions
    policies = other_policy.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier.dotted_string for p in policies] == ["1.2.250.1.213.1.7.2.1.1.1.2"]
    card = build(issuer, "1.2.250.1.213.1.7.2.1.1.1.1", extensions.ProductCategory.CARD)
    category = {e.oid.dotted_string: e for e in card.extensions}["1.2.250.1.71.1.2.5"]
    assert category.value.value == bytes.fromhex("040100")
