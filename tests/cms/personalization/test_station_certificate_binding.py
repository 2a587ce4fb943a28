"""A station's token is bound to its client certificate (STATION_CERTIFICATE_BINDING): the front
(deploy/nginx) verifies the certificate and passes it on; the token presented with no certificate,
another station's, or headers from an undeclared proxy, is refused."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from rest_framework.test import APIClient

from tests.pki.keys_pool import rsa_key

pytestmark = pytest.mark.django_db(transaction=True)

PROXY = "10.9.8.7"  # only a declared address, never contacted


def _csr(name: str) -> bytes:
    key = rsa_key(name)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "station")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def _enrolled(scene: Any, name: str) -> Any:
    from cms.personalization.stations import station_create, station_enroll
    from demo import setup

    issued = station_create(site_code=scene.pool.code, name=name, caller=setup.SYSTEM)
    return station_enroll(code=issued.code, csr_pem=_csr(name))


def _claim(token: str, pem: str | None, *, verify: str = "SUCCESS", remote: str = PROXY) -> int:
    client = APIClient()
    headers: dict[str, str] = {"HTTP_AUTHORIZATION": f"Token {token}", "REMOTE_ADDR": remote}
    if pem is not None:  # as nginx's $ssl_client_escaped_cert
        headers["HTTP_X_SSL_CLIENT_CERT"] = quote(pem)
        headers["HTTP_X_SSL_CLIENT_VERIFY"] = verify
    return client.post("/api/v1/station/claim", {}, format="json", **headers).status_code


@pytest.fixture
def binding(settings: Any) -> None:
    settings.STATION_CERTIFICATE_BINDING = True
    settings.CMS_TRUSTED_PROXIES = [PROXY]


def test_a_station_token_goes_with_its_own_certificate_only(scene: Any, binding: None) -> None:
    first = _enrolled(scene, "bound-a")
    second = _enrolled(scene, "bound-b")
    assert first.certificate_pem and second.certificate_pem

    assert _claim(first.token, first.certificate_pem) == 204  # no job: nothing to claim
    assert _claim(first.token, second.certificate_pem) == 401  # another station's certificate
    assert _claim(first.token, None) == 401  # no certificate
    assert _claim(first.token, first.certificate_pem, verify="FAILED:bad") == 401
    assert _claim(first.token, first.certificate_pem, remote="127.0.0.2") == 401  # not a proxy
    assert _claim(first.token, "not a certificate") == 401
    assert _claim(second.token, second.certificate_pem) == 204


def test_a_re_enrolled_station_is_refused_with_its_old_certificate(
    scene: Any, binding: None
) -> None:
    from cms.personalization.stations import station_code_renew, station_enroll
    from demo import setup

    first = _enrolled(scene, "renewed")
    renewed = station_code_renew(station_id=first.station.pk, caller=setup.SYSTEM)
    second = station_enroll(code=renewed.code, csr_pem=_csr("renewed-2"))
    assert _claim(second.token, first.certificate_pem) == 401
    assert _claim(second.token, second.certificate_pem) == 204


def test_people_are_not_asked_for_a_certificate(
    scene: Any, binding: None, api_client_for: Any
) -> None:
    client = api_client_for("security_officer")
    assert client.get("/api/v1/stations", REMOTE_ADDR=PROXY).status_code == 200


def test_without_binding_a_station_token_alone_is_enough(scene: Any) -> None:
    enrolled = _enrolled(scene, "unbound")
    assert _claim(enrolled.token, None) == 204


def test_remembered_station_lookups_end_at_once_on_re_enrollment_and_disabling(
    scene: Any, binding: None, settings: Any
) -> None:
    """api.auth_cache on: the certificate a station's token goes with is remembered too, and
    dropped as soon as the station is re-enrolled or disabled."""
    from api import auth_cache
    from cms.personalization.stations import station_code_renew, station_disable, station_enroll
    from demo import setup

    settings.API_AUTH_CACHE_SECONDS = 300
    auth_cache._entries.clear()
    first = _enrolled(scene, "remembered")
    assert _claim(first.token, first.certificate_pem) == 204
    assert _claim(first.token, first.certificate_pem) == 204  # from the entry
    renewed = station_code_renew(station_id=first.station.pk, caller=setup.SYSTEM)
    second = station_enroll(code=renewed.code, csr_pem=_csr("remembered-2"))
    assert _claim(second.token, second.certificate_pem) == 204
    assert _claim(second.token, first.certificate_pem) == 401
    station_disable(station_id=first.station.pk, caller=setup.SYSTEM)
    assert _claim(second.token, second.certificate_pem) == 401
    auth_cache._entries.clear()
