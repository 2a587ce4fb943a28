"""The lean ``/ocsp`` front (pki.wsgi.OcspFront): same answers as the Django views, the rest
passed through."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from django.db import OperationalError
from django.test import Client

from core.actors import Actor
from pki import responder, services
from pki.domain.reasons import RevocationReason
from pki.models import Certificate, CertificateAuthority
from pki.wsgi import OcspFront
from tests import wsgi
from tests.pki.helpers import ISSUING, holder, openssl
from tests.pki.keys_pool import rsa_key

ACTOR = Actor.system("tests")
OCSP_REQUEST = "application/ocsp-request"


class Reply(wsgi.Reply):
    def ocsp(self) -> ocsp.OCSPResponse:
        assert self.headers["Content-Type"] == "application/ocsp-response"
        return ocsp.load_der_ocsp_response(self.body)


class Fallback:
    """Stands for Django's handler: records what it was given."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.paths.append(environ["PATH_INFO"])
        start_response("204 No Content", [])
        return []


def _environ(
    method: str, path: str, body: bytes = b"", content_type: str = OCSP_REQUEST
) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }


@pytest.fixture
def front() -> OcspFront:
    return OcspFront(Fallback())


@pytest.fixture
def issued(pki_software: str) -> tuple[Certificate, x509.Certificate, x509.Certificate]:
    row = services.certificate_issue(
        authority=ISSUING,
        profile="cps_auth",
        public_key=rsa_key("holder1").public_key(),
        holder=holder(1),
        actor=ACTOR,
    )
    issuer = CertificateAuthority.objects.get(short_name=ISSUING)
    return (
        row,
        x509.load_der_x509_certificate(bytes(row.der)),
        x509.load_der_x509_certificate(bytes(issuer.certificate_der)),
    )


def _request(cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def test_post_and_get_answer_like_the_django_views(
    front: OcspFront, issued: tuple[Certificate, x509.Certificate, x509.Certificate], client: Client
) -> None:
    row, cert, issuer = issued
    body = _request(cert, issuer)
    posted = Reply(front, _environ("POST", "/ocsp", body))
    assert posted.code == 200
    assert posted.ocsp().certificate_status is ocsp.OCSPCertStatus.GOOD
    assert posted.ocsp().serial_number == row.serial_int
    assert posted.headers["Cache-Control"].startswith("public, max-age=")
    assert {"ETag", "Last-Modified", "Expires"} <= set(posted.headers)
    assert posted.headers["X-Content-Type-Options"] == "nosniff"
    assert posted.headers["Content-Length"] == str(len(posted.body))

    through_django = client.post("/ocsp", body, content_type=OCSP_REQUEST)
    assert through_django.content == posted.body
    assert through_django["ETag"] == posted.headers["ETag"]
    assert through_django["Cache-Control"] == posted.headers["Cache-Control"]

    encoded = base64.b64encode(body).decode()
    fetched = Reply(front, _environ("GET", f"/ocsp/{encoded}"))
    assert fetched.code == 200
    assert fetched.body == posted.body
    head = Reply(front, _environ("HEAD", f"/ocsp/{encoded}"))
    assert head.code == 200
    assert head.body == b""
    assert head.headers["Content-Length"] == str(len(posted.body))


def test_revocation_is_seen_at_once(
    front: OcspFront, issued: tuple[Certificate, x509.Certificate, x509.Certificate]
) -> None:
    row, cert, issuer = issued
    body = _request(cert, issuer)
    assert Reply(front, _environ("POST", "/ocsp", body)).ocsp().certificate_status is (
        ocsp.OCSPCertStatus.GOOD
    )
    services.certificate_revoke(
        certificate_id=row.pk, reason=RevocationReason.KEY_COMPROMISE, actor=ACTOR
    )
    answer = Reply(front, _environ("POST", "/ocsp", body)).ocsp()
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason is x509.ReasonFlags.key_compromise


def test_nonce_is_echoed_by_the_live_path_and_not_cached(
    front: OcspFront,
    issued: tuple[Certificate, x509.Certificate, x509.Certificate],
    settings: Any,
) -> None:
    settings.PKI_OCSP_NONCE_SIGNING = True  # opt-in (ADR 0019)
    _, cert, issuer = issued
    reply = Reply(
        front, _environ("POST", "/ocsp", _request(cert, issuer, nonce=b"0123456789abcdef"))
    )
    assert reply.code == 200
    nonce = reply.ocsp().extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    assert nonce == b"0123456789abcdef"
    assert reply.headers["Cache-Control"] == "no-store"
    assert "ETag" not in reply.headers


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type"),
    [
        ("POST", "/ocsp", b"\x30\x03junk", OCSP_REQUEST),
        ("POST", "/ocsp", b"", OCSP_REQUEST),
        ("POST", "/ocsp", b"\x30" * (responder.MAX_OCSP_REQUEST + 1), OCSP_REQUEST),
        ("POST", "/ocsp", b"\x30\x00", "application/octet-stream"),
        ("GET", "/ocsp/%%%notbase64", b"", ""),
        ("GET", "/ocsp/" + "A" * (responder.MAX_OCSP_REQUEST * 2 + 4), b"", ""),
    ],
)
def test_malformed_requests_get_malformed_request_400(
    pki_software: str, front: OcspFront, method: str, path: str, body: bytes, content_type: str
) -> None:
    reply = Reply(front, _environ(method, path, body, content_type))
    assert reply.code == 400
    assert reply.ocsp().response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert reply.headers["Cache-Control"] == "no-store"


def test_content_type_parameters_are_accepted(
    front: OcspFront, issued: tuple[Certificate, x509.Certificate, x509.Certificate]
) -> None:
    _, cert, issuer = issued
    environ = _environ("POST", "/ocsp", _request(cert, issuer), "Application/OCSP-Request; x=1")
    assert Reply(front, environ).ocsp().certificate_status is ocsp.OCSPCertStatus.GOOD


@pytest.mark.parametrize(
    ("method", "path", "allow"), [("GET", "/ocsp", "POST"), ("PUT", "/ocsp/MAA=", "GET, HEAD")]
)
def test_wrong_methods_are_405(front: OcspFront, method: str, path: str, allow: str) -> None:
    reply = Reply(front, _environ(method, path))
    assert reply.code == 405
    assert reply.headers["Allow"] == allow


@pytest.mark.parametrize("path", ["/pki/crl/ACI-FO-PP-TEST.crl", "/ocsp/", "/ocspx", "/api/x"])
def test_other_paths_go_to_django(front: OcspFront, path: str) -> None:
    reply = Reply(front, _environ("GET", path))
    assert reply.code == 204
    assert isinstance(front.app, Fallback)
    assert front.app.paths == [path]


def test_database_down_is_try_later_503(
    front: OcspFront,
    issued: tuple[Certificate, x509.Certificate, x509.Certificate],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, cert, issuer = issued

    def down(*args: object, **kwargs: object) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(responder, "_presigned", down)
    reply = Reply(front, _environ("POST", "/ocsp", _request(cert, issuer)))
    assert reply.code == 503
    assert reply.ocsp().response_status is ocsp.OCSPResponseStatus.TRY_LATER


def test_the_deployed_application_is_the_front() -> None:
    from config.wsgi import application

    assert isinstance(application, OcspFront)


def _two_certificate_request(
    tmp_path: Path, cert: x509.Certificate, issuer: x509.Certificate, nonce: bool
) -> bytes:
    """A DER request asking about ``cert`` and another serial, built by ``openssl ocsp``
    (cryptography builds single-certificate requests only)."""
    issuer_pem = tmp_path / "issuer.pem"
    issuer_pem.write_bytes(issuer.public_bytes(serialization.Encoding.PEM))
    cert_pem = tmp_path / "cert.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out = tmp_path / "two.req"
    made = openssl(
        "ocsp", "-issuer", issuer_pem, "-cert", cert_pem, "-serial", "0x1234abcd",
        "-nonce" if nonce else "-no_nonce", "-reqout", out,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return out.read_bytes()


@pytest.mark.parametrize("live", [True, False])
@pytest.mark.parametrize("nonce", [True, False])
def test_several_certificates_get_malformed_request_never_500(
    front: OcspFront,
    issued: tuple[Certificate, x509.Certificate, x509.Certificate],
    client: Client,
    settings: Any,
    tmp_path: Path,
    live: bool,
    nonce: bool,
) -> None:
    """RFC 5019 §2.1.1: one certificate per request; several get ``malformedRequest`` in an
    HTTP 200 (the request is well formed), from the lean front and the Django views alike."""
    settings.PKI_OCSP_LIVE_SIGNING = live
    settings.PKI_OCSP_NONCE_SIGNING = nonce
    _, cert, issuer = issued
    body = _two_certificate_request(tmp_path, cert, issuer, nonce)
    encoded = base64.b64encode(body).decode()
    replies = [
        Reply(front, _environ("POST", "/ocsp", body)),
        Reply(front, _environ("GET", f"/ocsp/{encoded}")),
    ]
    for reply in replies:
        assert reply.code == 200
        assert reply.ocsp().response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        assert reply.headers["Cache-Control"] == "no-store"
    django_replies = [
        client.post("/ocsp", body, content_type=OCSP_REQUEST),
        client.get(f"/ocsp/{encoded}"),
    ]
    for through_django in django_replies:
        assert through_django.status_code == 200
        assert through_django.content == replies[0].body
        assert through_django["Cache-Control"] == "no-store"
    # the certificate alone is still answered
    alone = Reply(front, _environ("POST", "/ocsp", _request(cert, issuer)))
    assert alone.ocsp().certificate_status is ocsp.OCSPCertStatus.GOOD
