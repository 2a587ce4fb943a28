"""The production topology on real parts (issue 12, item 3): nginx in front (TLS, mutual TLS for
the station, the OCSP cache), gunicorn, Celery workers for `default` and `signing` and beat on
Redis, PostgreSQL. A CPS4 is issued end to end through the front by a real station process on
mutual TLS; OCSP and the CRL are checked through the front with the OpenSSL command line; a
revocation shows through the cache once the configured ceiling has passed."""

from __future__ import annotations

import base64
import json
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from tests.cardsim.pcscd_support import CONTACT_READER, Simulator, simulator_running
from tests.deploy.conftest import OCSP_CEILING
from tests.deploy.support import Topology, scene, station

pytestmark = [pytest.mark.integration, pytest.mark.pcscd]


@pytest.fixture
def sim(pcscd: object, tmp_path: Path) -> Iterator[Simulator]:
    with simulator_running(Simulator(tmp_path / "card")) as simulator:
        yield simulator


def _card_ids(sim: Simulator) -> tuple[str, str]:
    from cardsim.card import Card as VirtualCard
    from cardsim.card import load_state

    virtual = VirtualCard(load_state(sim.state))
    return virtual.serial.hex(), virtual.desfire_chip.state.uid.hex()


def _https(
    topology: Topology, path: str, *, token: str | None = None, cert: tuple[str, str] | None = None
) -> tuple[int, Any]:
    context = ssl.create_default_context(cafile=topology.tls_ca)
    if cert is not None:
        context.load_cert_chain(*cert)
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    request = urllib.request.Request(
        topology.https + path, data=b"{}", headers={**headers, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _openssl_ocsp(topology: Topology, workdir: Path, cert: str, *, nonce: bool) -> str:
    done = subprocess.run(
        ["openssl", "ocsp", "-issuer", "issuer.pem", "-cert", cert, "-url",
         f"{topology.http}/ocsp", "-CAfile", "root.pem", *([] if nonce else ["-no_nonce"])],
        cwd=workdir, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return done.stdout + done.stderr


def _get_ocsp(url: str, der_request: bytes) -> tuple[ocsp.OCSPResponse, dict[str, str]]:
    encoded = base64.b64encode(der_request).decode()
    with urllib.request.urlopen(f"{url}/ocsp/{encoded}", timeout=30) as response:
        return ocsp.load_der_ocsp_response(response.read()), dict(response.headers)


def test_cps4_issued_through_the_front_then_ocsp_and_crl(
    topology: Topology, sim: Simulator, tmp_path: Path
) -> None:
    serial, uid = _card_ids(sim)
    made = scene(
        topology, serial=serial, uid=uid, national_id="810002813839", stations=["front", "other"]
    )
    credential = tmp_path / "station" / "credential.json"
    other = tmp_path / "other" / "credential.json"
    cms = topology.https

    # --- enrollment by one-time code over TLS, with a client certificate ----------------------
    for path, code in ((credential, made["codes"][0]), (other, made["codes"][1])):
        path.parent.mkdir()
        enrolled = station(topology, path, "enroll", "--cms", cms, "--code", code, "--certificate")
        assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
    token = json.loads(credential.read_text())["token"]
    theirs = (str(other.with_name("station-cert.pem")), str(other.with_name("station-key.pem")))

    # --- the credential is bound to the certificate: refused without it or with another ----------
    assert _https(topology, "/api/v1/station/claim", token=token)[0] == 403  # nginx: no cert
    assert _https(topology, "/api/v1/station/claim", token=token, cert=theirs)[0] == 401
    assert _https(topology, "/api/v1/pin-mailers", token=token)[0] == 401  # Django: no cert

    # --- personalization through pcscd, the station on mutual TLS --------------------------------
    run = station(topology, credential, "run", "--reader", CONTACT_READER, "--once")
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r": done \(\d+ round trips", run.stdout), run.stdout
    issued = topology.python(
        "import json\nfrom cms.models import CardRequest, CardCertificate\n"
        f"r = CardRequest.objects.get(pk={made['request']!r})\n"
        "links = CardCertificate.objects.filter(card=r.card).select_related('certificate__issuer')\n"
        "print(json.dumps({'status': r.card.status, 'certs': {l.slot: [bytes(l.certificate.der)"
        ".hex(), l.certificate.issuer.short_name, str(l.certificate.serial)] for l in links}}))"
    )
    assert issued["status"] == "ISSUED"
    # the certificates of the mutual TLS handshake were the station's own (nginx's log)
    access = (topology.directory / "log" / "access.log").read_text()
    assert re.search(r'"POST /api/v1/station/sessions/[0-9a-f-]+/exchange HTTP/1.1" 200', access)

    # --- OCSP through the front: POST with and without nonce, GET; ISSUED = on hold -----------
    auth_der, ca_name, _ = issued["certs"]["auth"]
    auth = x509.load_der_x509_certificate(bytes.fromhex(auth_der))
    pem = lambda der: x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)  # noqa: E731
    cas = topology.python(
        "import json\nfrom pki.models import CertificateAuthority as C\n"
        "print(json.dumps({c.short_name: [bytes(c.certificate_der).hex(), c.parent_id is None]"
        " for c in C.objects.all()}))"
    )
    issuer_der = bytes.fromhex(cas[ca_name][0])
    (tmp_path / "auth.pem").write_bytes(auth.public_bytes(Encoding.PEM))
    (tmp_path / "issuer.pem").write_bytes(pem(issuer_der))
    (tmp_path / "root.pem").write_bytes(
        b"".join(pem(bytes.fromhex(der)) for der, root in cas.values() if root)
    )
    for nonce in (False, True):
        answer = _openssl_ocsp(topology, tmp_path, "auth.pem", nonce=nonce)
        assert "Response verify OK" in answer and "auth.pem: revoked" in answer, answer
        assert "Reason: certificateHold" in answer, answer
    issuer = x509.load_der_x509_certificate(issuer_der)
    der_request = (
        ocsp.OCSPRequestBuilder().add_certificate(auth, issuer, hashes.SHA1()).build()
    ).public_bytes(Encoding.DER)
    first, headers = _get_ocsp(topology.http, der_request)
    again, headers_again = _get_ocsp(topology.http, der_request)
    assert first.certificate_status == ocsp.OCSPCertStatus.REVOKED  # on hold until activation
    assert again.public_bytes(Encoding.DER) == first.public_bytes(Encoding.DER)
    assert f"max-age={OCSP_CEILING}" in headers["Cache-Control"] or headers_again
    assert headers_again["X-Cache-Status"] == "HIT"

    # --- the CRL through the front, verified by openssl crl against its issuer ------------------
    with urllib.request.urlopen(f"{topology.http}/pki/crl/{ca_name}.crl", timeout=30) as r:
        (tmp_path / "ca.crl").write_bytes(r.read())
    checked = subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", "ca.crl", "-CAfile", "issuer.pem", "-noout",
         "-text"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert "verify OK" in checked.stderr + checked.stdout, checked.stderr

    # --- a revocation shows through the cache once the ceiling has passed ------------------------
    # activation releases the hold: good, as the origin says at once
    topology.python(
        "import json\nfrom django.contrib.auth.models import User\nfrom cms.callers import Caller\n"
        "from cms.models import CardRequest\nfrom cms.services.cards import card_transition\n"
        f"r = CardRequest.objects.get(pk={made['request']!r})\n"
        "operator = Caller.for_user(User.objects.get(username='topology-operator'))\n"
        "card_transition(card_id=r.card_id, transition='activate', caller=operator)\n"
        "print(json.dumps(True))"
    )
    assert _get_ocsp(topology.origin, der_request)[0].certificate_status == ocsp.OCSPCertStatus.GOOD
    time.sleep(OCSP_CEILING + 1)  # the cached "on hold" answer has expired
    good, _ = _get_ocsp(topology.http, der_request)
    assert good.certificate_status == ocsp.OCSPCertStatus.GOOD
    cached, headers = _get_ocsp(topology.http, der_request)
    assert (
        headers["X-Cache-Status"] == "HIT" and cached.certificate_status == good.certificate_status
    )
    revoked = topology.manage(
        "pki_revoke",
        "--ca",
        ca_name,
        "--serial",
        str(auth.serial_number),
        "--reason",
        "key_compromise",
    )
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    time.sleep(OCSP_CEILING + 1)
    seen, _ = _get_ocsp(topology.http, der_request)
    assert seen.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert seen.revocation_reason == x509.ReasonFlags.key_compromise
    answer = _openssl_ocsp(topology, tmp_path, "auth.pem", nonce=False)
    assert "auth.pem: revoked" in answer and "Reason: keyCompromise" in answer, answer


def _padded_request(issuer: x509.Certificate, serial: int, size: int) -> bytes:
    """A single-CertID request for ``serial`` of ``issuer``, padded to about ``size`` bytes with
    a private, non-critical request extension (which the responder ignores)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "stand-in")])
    # only the serial and the issuer's name and key make the CertID: a stand-in certificate
    stand_in = (
        x509.CertificateBuilder().subject_name(name).issuer_name(issuer.subject)
        .public_key(key.public_key()).serial_number(serial)
        .not_valid_before(issuer.not_valid_before_utc).not_valid_after(issuer.not_valid_after_utc)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    padding = b"p" * size
    value = b"\x04\x82" + len(padding).to_bytes(2, "big") + padding
    extension = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), value)
    builder = ocsp.OCSPRequestBuilder().add_certificate(stand_in, issuer, hashes.SHA1())
    return builder.add_extension(extension, critical=False).build().public_bytes(Encoding.DER)


def _post(url: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/ocsp-request"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def test_distinct_large_ocsp_posts_never_share_a_cached_answer(topology: Topology) -> None:
    """The POST trap (deployment.md): a body nginx spools to disk is missing from
    $request_body, and distinct requests would share one cache key, one answer."""
    cas = topology.python(
        "import json\nfrom pki.models import CertificateAuthority as C\n"
        "print(json.dumps([bytes(c.certificate_der).hex() for c in C.objects.all() "
        "if 'cps_auth' in (c.profiles or [])]))"
    )
    issuer = x509.load_der_x509_certificate(bytes.fromhex(cas[0]))
    serials = [0x7E57_0001, 0x7E57_0002, 0x7E57_0003]
    for _ in range(2):  # the second round is served from the cache
        for serial in serials:
            body = _padded_request(issuer, serial, 3500)
            assert len(body) > 3500
            status, answer, headers = _post(f"{topology.http}/ocsp", body)
            assert status == 200, answer
            single = ocsp.load_der_ocsp_response(answer)
            assert single.serial_number == serial, headers.get("X-Cache-Status")
            assert single.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    assert headers["X-Cache-Status"] == "HIT"
    # larger than nginx keeps in memory: refused, never cached under an empty body
    status, _, _ = _post(f"{topology.http}/ocsp", _padded_request(issuer, serials[0], 6000))
    assert status == 413
