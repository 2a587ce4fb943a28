"""The holder's card as a relying party meets it (issue 16), through pcscd with the virtual card
and the real middleware: a CPS4 issued through the station relay, then served by ``python -m
cardsim`` behind pcscd + vpcd.

- ``python -m cpsclient contact-auth``: OpenSC's PKCS#11 module, the PIN, a challenge signed by
  the authentication key, the chain to the pinned root and the status by OCSP (live server);
- remote authentication over TLS: ``curl`` with the card's key through libp11's OpenSSL engine
  and OpenSC completes a handshake with the relying-party nginx of ``deploy/nginx`` (its own
  port, in a temporary directory), which requires a client certificate of the CPS issuing CA
  and asks the CMS's OCSP responder for its status.

After the card is revoked, both refuse it. The PIN travels in an environment variable only
(``$ENV::`` in the OpenSSL configuration, ``--pin-env`` for cpsclient), never in a command line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from cardsim.rig import free_port, port_listening, wait_until
from tests.cardsim.pcscd_support import Simulator, simulator_running
from tests.cms.mailers.pdf import codes
from tests.cms.personalization.conftest import (
    card_queued,
    link_of,
    virtual_card,  # noqa: F401
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.pcscd,
    pytest.mark.django_db(transaction=True),
]

REPO = Path(__file__).resolve().parents[2]
MODULES = (
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
)
OPENSC_CONF = """app default {{
  card_atr {atr} {{ driver = "MaskTech"; name = "CPS4 (ISO 7816-15)"; }}
}}
"""
# libp11's engine, loaded by OpenSSL's configuration: the PIN comes from the environment
OPENSSL_CONF = """openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
MODULE_PATH = {module}
PIN = $ENV::CPS_PIN
init = 0
"""
HTTP_CODE = re.compile(r"HTTP_CODE=(\d{3})")


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)


def _cpsclient(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cpsclient", *args],
        env=dict(env, PYTHONPATH=str(REPO)),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def relying_party(tmp_path: Path, live_server: Any) -> Iterator[dict[str, Any]]:
    """The relying-party nginx of deploy/nginx/relying-party.conf.in on a port of its own."""
    assert shutil.which("nginx"), "nginx is missing: make test installs it"
    run = tmp_path / "nginx"
    (run / "log").mkdir(parents=True)
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run / sub).mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(run / "server.key"), "-out", str(run / "server.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    cms_port = live_server.url.rsplit(":", 1)[1]
    values = {
        "@LISTEN@": f"127.0.0.1:{port}",
        "@TLS_CERT@": str(run / "server.pem"),
        "@TLS_KEY@": str(run / "server.key"),
        "@CPS_CHAIN@": str(tmp_path / "cps-chain.pem"),
        # the responder by address: nginx needs no resolver then
        "@OCSP_RESPONDER@": f"http://127.0.0.1:{cms_port}/ocsp",
        "@APP@": f"http://127.0.0.1:{cms_port}",
    }
    site = (REPO / "deploy/nginx/relying-party.conf.in").read_text()
    for key, value in values.items():
        site = site.replace(key, value)
    assert not re.search(r"@[A-Z_]+@", site), site
    (run / "cms.conf").write_text(site)  # the name standalone.conf.in includes
    standalone = (REPO / "deploy/nginx/standalone.conf.in").read_text()
    for key, value in {
        "@USER@": "root" if os.getuid() == 0 else os.environ.get("USER", "nobody"),
        "@WORKERS@": "1",
        "@RUN_DIR@": str(run),
        "@LOG_DIR@": str(run / "log"),
    }.items():
        standalone = standalone.replace(key, value)
    # nginx logs why it refused a client certificate at the info level
    (run / "nginx.conf").write_text(standalone.replace("error.log warn;", "error.log info;"))
    nginx = [
        "nginx",
        "-p",
        str(run),
        "-c",
        str(run / "nginx.conf"),
        "-e",
        str(run / "log/error.log"),
    ]
    try:
        yield {"port": port, "run": run, "start": lambda: _nginx_start(nginx, port)}
    finally:
        if (run / "nginx.pid").exists():
            subprocess.run([*nginx, "-s", "stop"], capture_output=True, check=False)


def _nginx_start(nginx: list[str], port: int) -> None:
    checked = subprocess.run([*nginx, "-t", "-q"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    subprocess.run(nginx, check=True, capture_output=True)
    wait_until(lambda: port_listening(port), timeout=30, what="relying-party nginx", interval=0.1)


def _curl(
    url: str, *, key_uri: str, cert: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--cacert", str(cert.parent / "nginx/server.pem"),
         "--engine", "pkcs11", "--key-type", "ENG", "--key", key_uri, "--cert", str(cert),
         "-w", "\nHTTP_CODE=%{http_code}\n", url],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_contact_auth_and_tls_with_the_card_key(
    scene,
    virtual_card,  # noqa: F811 - the fixture imported above
    pcscd,
    make_user,
    live_server,
    relying_party,
    settings,
    tmp_path,
):
    from cardsim.card import save_state
    from cms.callers import Caller
    from cms.mailers.services import pin_mailer_print
    from cms.models import Card, CardCertificate, PinMailer
    from cms.services.cards import card_transition
    from personalization_station.relay import personalize
    from pki.models import CertificateAuthority

    # the certificates name this server for their issuer (caIssuers) and OCSP
    settings.PKI_PUBLIC_BASE_URL = live_server.url
    card_queued(scene, virtual_card)
    assert personalize(scene.api(), link_of(virtual_card)).state == "done"
    card = Card.objects.get(chip_serial=virtual_card.serial.hex().upper())
    mailer = PinMailer.objects.get(card=card)
    pin = codes(pin_mailer_print(mailer_id=mailer.pk, caller=scene.operator))[0]
    helpdesk = Caller.for_user(make_user("helpdesk_agent"))
    card_transition(card_id=card.pk, transition="activate", caller=helpdesk)

    auth = CardCertificate.objects.get(card=card, slot="auth").certificate
    auth_pem = tmp_path / "auth.pem"
    auth_pem.write_bytes(_pem(bytes(auth.der)))
    root = CertificateAuthority.objects.get(short_name="ACR-FO-TEST")
    (tmp_path / "root.pem").write_bytes(_pem(bytes(root.certificate_der)))
    (tmp_path / "cps-chain.pem").write_bytes(
        _pem(bytes(auth.issuer.certificate_der)) + _pem(bytes(root.certificate_der))
    )
    relying_party["start"]()
    url = f"https://127.0.0.1:{relying_party['port']}/tls-check"

    from cards.products import CPS4

    module = next(m for m in MODULES if Path(m).exists())
    atr = ":".join(f"{b:02x}" for b in CPS4.contact.atr)
    (tmp_path / "opensc.conf").write_text(OPENSC_CONF.format(atr=atr))
    (tmp_path / "openssl.cnf").write_text(OPENSSL_CONF.format(module=module))
    env = dict(
        os.environ,
        OPENSC_CONF=str(tmp_path / "opensc.conf"),
        OPENSSL_CONF=str(tmp_path / "openssl.cnf"),
        CPS_PIN=pin,
    )

    save_state(tmp_path / "card.json", virtual_card.to_json())
    with simulator_running(Simulator(tmp_path)):
        key_uri = f"pkcs11:type=private;id={_key_id(module, bytes(auth.der), env)}"
        assert pin not in key_uri

        # --- contact authentication with cpsclient
        ca = str(tmp_path / "root.pem")
        done = _cpsclient("contact-auth", "--ca-file", ca, "--pin-env", "CPS_PIN", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"AUTHENTICATED card {card.card_number}" in done.stdout, done.stdout
        assert pin not in done.stdout + done.stderr

        # --- TLS with the card's key: the handshake completes, nginx saw the holder
        shake = _curl(url, key_uri=key_uri, cert=auth_pem, env=env)
        assert HTTP_CODE.search(shake.stdout).group(1) == "200", shake.stdout + shake.stderr  # type: ignore[union-attr]
        assert shake.stdout.startswith("SUCCESS "), shake.stdout
        assert f"CN={card.holder.national_id}" in shake.stdout, shake.stdout
        assert not re.search(rf"(?<!\d){pin}(?!\d)", shake.stdout + shake.stderr)
        # without the card's certificate, no page
        bare = subprocess.run(
            ["curl", "-sS", "--cacert", str(relying_party["run"] / "server.pem"),
             "-w", "\nHTTP_CODE=%{http_code}\n", url],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert HTTP_CODE.search(bare.stdout).group(1) == "400", bare.stdout  # type: ignore[union-attr]

        # --- revoked: the OCSP answer changes at once; both refuse the card
        card_transition(card_id=card.pk, transition="revoke", caller=helpdesk, reason="lost")
        auth.refresh_from_db()
        assert auth.status == "revoked"
        refused = _cpsclient("contact-auth", "--ca-file", ca, "--pin-env", "CPS_PIN", env=env)
        assert refused.returncode != 0 and "revoked" in refused.stdout + refused.stderr, refused
        shake = _curl(url, key_uri=key_uri, cert=auth_pem, env=env)
        assert HTTP_CODE.search(shake.stdout).group(1) == "400", shake.stdout + shake.stderr  # type: ignore[union-attr]
        assert "SUCCESS" not in shake.stdout
    log = (relying_party["run"] / "log/error.log").read_text()
    assert "certificate revoked" in log, log
    assert not re.search(rf"(?<!\d){pin}(?!\d)", log)


def _key_id(module: str, auth_der: bytes, env: dict[str, str]) -> str:
    """The PKCS#11 ID (URI-encoded) of the authentication key: the ID of the certificate object
    that is the authentication certificate."""
    listing = subprocess.run(
        ["pkcs11-tool", "--module", module, "--slot-index", "0", "--list-objects", "--type", "cert"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert listing.returncode == 0, listing.stdout + listing.stderr
    for cert_id in re.findall(r"ID:\s+([0-9a-f]+)", listing.stdout):
        read = subprocess.run(
            ["pkcs11-tool", "--module", module, "--slot-index", "0", "--read-object",
             "--type", "cert", "--id", cert_id],
            env=env, capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        if read.returncode == 0 and read.stdout == auth_der:
            return "".join(f"%{cert_id[i : i + 2]}" for i in range(0, len(cert_id), 2))
    raise AssertionError(
        f"no certificate object is the authentication certificate: {listing.stdout}"
    )
