"""CPS4 issuance end to end (issue 7): PostgreSQL, pcscd + vsmartcard-vpcd + ``python -m cardsim``,
a real ``python -m personalization_station`` process (enroll, then run), the server (live_server)
and a real Celery worker on the Redis broker. Then the issued card is checked through pyscard,
OpenSSL and OpenSC as a relying party would."""

from __future__ import annotations

import hashlib
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
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from tests.cardsim.conftest import pcscd  # noqa: F401 - the shared pcscd fixture
from tests.cardsim.pcscd_support import (
    CONTACT_READER,
    CONTACTLESS_READER,
    Simulator,
    connect,
    simulator_running,
    transmitter,
)
from tests.cms.mailers.pdf import codes

pytestmark = [
    pytest.mark.integration,
    pytest.mark.pcscd,
    pytest.mark.django_db(transaction=True),
]

REPO = Path(__file__).resolve().parents[2]
OPENSC_CONF = """app default {{
  card_atr {atr} {{ driver = "MaskTech"; name = "CPS4 (ISO 7816-15)"; }}
}}
"""


@pytest.fixture
def worker_env(pki_software: str, software_key_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker process must open the same software CA keys as the test process."""
    monkeypatch.setenv("PKI_SOFTWARE_KEY_DIR", str(software_key_dir))
    monkeypatch.setenv("PKI_KEY_PASSPHRASE", "test-passphrase-not-secret")


@pytest.fixture
def sim(pcscd: object, tmp_path: Path) -> Iterator[Simulator]:  # noqa: F811
    """A virtual CPS4 behind the machine's pcscd (the one `make test` starts), as in production:
    the test's own pyscard calls go through the same daemon as the station's."""
    with simulator_running(Simulator(tmp_path)) as simulator:
        yield simulator


def _station(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "personalization_station", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _apdu(tx: Any, hex_or_bytes: str | bytes) -> tuple[bytes, int]:
    raw = bytes.fromhex(hex_or_bytes) if isinstance(hex_or_bytes, str) else hex_or_bytes
    out = tx(raw)
    return out[:-2], int.from_bytes(out[-2:], "big")


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)


def test_cps4_personalized_activated_and_usable(
    worker_env: None,
    scene: Any,
    celery_worker_process: Any,
    live_server: Any,
    sim: Simulator,
    tmp_path: Path,
    make_user: Any,
) -> None:
    from cards.desfire import CommMode, DesfireCard
    from cards.products import CPS4
    from cards.programs.cps4 import desfire_identity_record
    from cards.transport import FunctionTransport
    from cardsim.card import Card as VirtualCard
    from cardsim.card import load_state
    from cms.callers import Caller
    from cms.choices import CardStatus
    from cms.mailers.services import pin_mailer_print
    from cms.models import CardCertificate, PinMailer
    from cms.personalization.keys import KeyVersions, card_keys_derive
    from cms.personalization.stations import station_create
    from cms.services.cards import card_transition
    from demo import setup
    from pki.models import CertificateAuthority

    # --- stock and request for the virtual card in the reader --------------------------------
    virtual = VirtualCard(load_state(sim.state))
    serial, uid = virtual.serial, virtual.desfire_chip.state.uid
    request = None
    setup.blank_card_register(
        product=scene.product, pool=scene.pool, chip_serial=serial.hex(), desfire_uid=uid.hex()
    )
    request = setup.request_queued(
        holder=setup.holder_demo(), product=scene.product, pool=scene.pool, operator=scene.operator
    )

    # --- enrollment by a real station process -------------------------------------------------
    issued = station_create(site_code=scene.pool.code, name="e2e-station", caller=setup.SYSTEM)
    credential = tmp_path / "station" / "credential.json"
    enrolled = _station(
        "--credential", str(credential), "enroll", "--cms", live_server.url, "--code", issued.code,
        cwd=tmp_path,
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
    assert credential.stat().st_mode & 0o777 == 0o600
    assert issued.code not in enrolled.stdout + enrolled.stderr

    # --- personalization through pcscd --------------------------------------------------------
    run = _station(
        "--credential", str(credential), "run", "--reader", CONTACT_READER, "--once",
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    trips = int(re.search(r": done \((\d+) round trips", run.stdout).group(1))  # type: ignore[union-attr]
    assert trips <= 12
    request.refresh_from_db()
    card = request.card
    assert card is not None and card.status == CardStatus.ISSUED

    # --- the PIN mailer, printed once; the PIN is nowhere else ---------------------------------
    mailer = PinMailer.objects.get(card=card)
    pdf = pin_mailer_print(mailer_id=mailer.pk, caller=scene.operator)
    pin = codes(pdf)[0].encode()
    # A 4-digit PIN is a substring of many serials: look for it as a number of its own.
    assert not re.search(rb"(?<!\d)" + pin + rb"(?!\d)", (run.stdout + run.stderr).encode())

    # --- activation after delivery releases the hold: by someone who did not print the PIN ------
    helpdesk = Caller.for_user(make_user("helpdesk_agent"))
    card_transition(card_id=card.pk, transition="activate", caller=helpdesk)
    card.refresh_from_db()
    assert card.status == CardStatus.ACTIVE
    links = {link.slot: link.certificate for link in CardCertificate.objects.filter(card=card)}
    assert {c.status for c in links.values()} == {"valid"}
    auth_der = bytes(links["auth"].der)
    auth_cert = x509.load_der_x509_certificate(auth_der)

    # --- PIN and a signature with the authentication key, through pyscard ------------------------
    tx = transmitter(connect(CONTACT_READER))
    assert _apdu(tx, "00A4040C08" + CPS4.contact.applet_aid.hex())[1] == 0x9000
    assert _apdu(tx, bytes.fromhex("0020008104") + pin)[1] == 0x9000
    slot = CPS4.key_slot("auth")
    assert _apdu(tx, f"002241B6038401{slot.key_reference:02X}")[1] == 0x9000
    message = b"relying party challenge"
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420")
    digest_info += hashlib.sha256(message).digest()
    signature, sw = _apdu(tx, bytes([0, 0x2A, 0x9E, 0x9A, len(digest_info)]) + digest_info + b"\0")
    assert sw == 0x9000
    public = auth_cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())

    # --- chain and OCSP with the OpenSSL command line ----------------------------------------------
    cas = {ca.short_name: bytes(ca.certificate_der) for ca in CertificateAuthority.objects.all()}
    issuer = x509.load_der_x509_certificate(bytes(links["auth"].issuer.certificate_der))
    roots = [
        der
        for der in cas.values()
        if x509.load_der_x509_certificate(der).issuer == x509.load_der_x509_certificate(der).subject
    ]
    (tmp_path / "auth.pem").write_bytes(_pem(auth_der))
    (tmp_path / "issuer.pem").write_bytes(issuer.public_bytes(Encoding.PEM))
    (tmp_path / "root.pem").write_bytes(b"".join(_pem(d) for d in roots))
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", "root.pem", "-untrusted", "issuer.pem", "auth.pem"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verify.returncode == 0 and "auth.pem: OK" in verify.stdout, verify.stderr
    ocsp = subprocess.run(
        ["openssl", "ocsp", "-issuer", "issuer.pem", "-cert", "auth.pem", "-url",
         f"{live_server.url}/ocsp", "-CAfile", "root.pem", "-no_nonce"],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert "auth.pem: good" in ocsp.stdout, ocsp.stdout + ocsp.stderr

    # --- DESFire: diversified key 1, identity file ------------------------------------------------
    session = card.sessions.get(status="done")
    versions = KeyVersions.from_dict(session.key_versions)
    assert versions.transport == card.transport_key_version == 1  # the test vendor's batch
    keys = card_keys_derive(product=CPS4, versions=versions, kdd=serial, serial=serial, uid=uid)
    desfire = DesfireCard(FunctionTransport(transmitter(connect(CONTACTLESS_READER))))
    app = CPS4.desfire
    assert app is not None
    desfire.select_application(app.aid)
    desfire.authenticate(1, keys.app[1])
    identity_file = next(f for f in app.files if f.content == "identity_record")
    record = desfire.read_data(identity_file.file_no, 0, identity_file.size, CommMode.FULL)
    assert card.holder is not None
    assert card.holder.national_id.encode() in record
    from cards.products import card_number
    from cards.programs.cps4 import Identity

    expected = desfire_identity_record(
        Identity(
            card_number(serial), card.holder.national_id, session.valid_from, session.valid_until
        )
    )
    assert record.startswith(expected)

    # --- OpenSC as a relying site configures it ------------------------------------------------
    assert shutil.which("pkcs15-tool"), "OpenSC is missing: make test installs it (opensc)"
    atr = ":".join(f"{b:02x}" for b in CPS4.contact.atr)
    conf = tmp_path / "opensc.conf"
    conf.write_text(OPENSC_CONF.format(atr=atr))
    env = dict(os.environ, OPENSC_CONF=str(conf))
    listing = subprocess.run(
        ["pkcs15-tool", "--reader", "0", "--list-certificates"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert listing.stdout.count("X.509 Certificate") == 2, listing.stdout
    module = next(
        (p for p in ("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so", "/usr/lib/opensc-pkcs11.so",
                     "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so") if Path(p).exists()),
        None,
    )  # fmt: skip
    assert module is not None
    objects = subprocess.run(
        ["pkcs11-tool", "--module", module, "--slot-index", "0", "--list-objects"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert objects.returncode == 0, objects.stdout + objects.stderr
    assert objects.stdout.count("Certificate Object") == 2, objects.stdout
    (tmp_path / "data.bin").write_bytes(message)
    signed = subprocess.run(
        ["pkcs11-tool", "--module", module, "--slot-index", "0", "--login", "--pin",
         pin.decode(), "--sign", "-m", "SHA256-RSA-PKCS", "--input-file", "data.bin",
         "--output-file", "sig.bin"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert not re.search(rb"(?<!\d)" + pin + rb"(?!\d)", (signed.stdout + signed.stderr).encode())
    public.verify((tmp_path / "sig.bin").read_bytes(), message, padding.PKCS1v15(), hashes.SHA256())
    # The key usages the card declares match its certificates (ADR 0013): the authentication key
    # signs only, so OpenSC's token self-test has nothing to decipher with; it asks for random
    # bytes in the lengths of its test (10, 100).
    keys = subprocess.run(
        ["pkcs15-tool", "--reader", "0", "--list-keys"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert keys.returncode == 0, keys.stdout + keys.stderr
    assert "decrypt" not in keys.stdout and keys.stdout.count("sign") >= 2, keys.stdout
    selftest = subprocess.run(
        ["pkcs11-tool", "--module", module, "--slot-index", "0", "--login", "--pin",
         pin.decode(), "--test"],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    report = selftest.stdout + selftest.stderr
    assert selftest.returncode == 0, report
    assert "No errors" in report, report
    assert re.search(r"C_GenerateRandom\(\):\n(  seeding.*\n)?  seems to be OK", report), report
    assert report.count("can't be used to decrypt, skipping") == 2, report
