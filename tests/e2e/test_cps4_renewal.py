"""Certificate renewal on the card end to end (issue 15 item 1): a CPS4 issued through pcscd by a
real station process and activated; the tests' clock moved into the certificate renewal window;
the daily sweep's task invites the card; a station process renews it (the holder types the
unchanged PIN on the station's stdin). Then, as relying parties see it: OpenSC lists the new
certificates and ``pkcs11-tool`` signs with the unchanged PIN; the new certificates verify and are
good in OCSP (``openssl ocsp``); the old ones are revoked ``superseded`` in OCSP and in the CRL
(``openssl crl``)."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import time_machine
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from tests.cardsim.conftest import pcscd  # noqa: F401 - the shared pcscd fixture
from tests.cardsim.pcscd_support import CONTACT_READER, Simulator
from tests.cms.mailers.pdf import codes
from tests.e2e.test_cps4_issuance import OPENSC_CONF, REPO, sim, worker_env  # noqa: F401

pytestmark = [
    pytest.mark.integration,
    pytest.mark.pcscd,
    pytest.mark.django_db(transaction=True),
]

MODULES = (
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
    "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
)


def _station(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "personalization_station", *args],
        cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _enrolled(name: str, site: str, live_server: Any, tmp_path: Path) -> Path:
    from cms.personalization.stations import station_create
    from demo import setup

    issued = station_create(site_code=site, name=name, caller=setup.SYSTEM)
    credential = tmp_path / name / "credential.json"
    done = _station(
        "--credential", str(credential), "enroll", "--cms", live_server.url, "--code", issued.code,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return credential


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)


def test_cps4_certificates_renewed_on_the_card(
    worker_env: None,  # noqa: F811
    scene: Any,
    celery_worker_process: Any,
    live_server: Any,
    sim: Simulator,  # noqa: F811
    tmp_path: Path,
    make_user: Any,
    settings: Any,
) -> None:
    from cardsim.card import Card as VirtualCard
    from cardsim.card import load_state
    from cms.callers import Caller
    from cms.choices import CardStatus
    from cms.mailers.services import pin_mailer_print
    from cms.models import CardCertificate, CardRenewal, PinMailer, RenewalInvitation
    from cms.services.cards import card_transition
    from cms.tasks import expiry_sweep_task
    from core.actors import Actor
    from demo import setup
    from pki import services
    from pki.choices import CrlKind

    # --- a CPS4 issued through pcscd by a station process, activated ---------------------------
    virtual = VirtualCard(load_state(sim.state))
    assert virtual.desfire_chip is not None
    setup.blank_card_register(
        product=scene.product,
        pool=scene.pool,
        chip_serial=virtual.serial.hex(),
        desfire_uid=virtual.desfire_chip.state.uid.hex(),
    )
    request = setup.request_queued(
        holder=setup.holder_demo(), product=scene.product, pool=scene.pool, operator=scene.operator
    )
    issuing_station = _enrolled("e2e-station", scene.pool.code, live_server, tmp_path)
    run = _station(
        "--credential", str(issuing_station), "run", "--reader", CONTACT_READER, "--once",
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    request.refresh_from_db()
    card = request.card
    assert card is not None and card.status == CardStatus.ISSUED
    pdf = pin_mailer_print(mailer_id=PinMailer.objects.get(card=card).pk, caller=scene.operator)
    pin = codes(pdf)[0]
    helpdesk = Caller.for_user(make_user("helpdesk_agent"))
    card_transition(card_id=card.pk, transition="activate", caller=helpdesk)
    old = {
        link.slot: link.certificate
        for link in CardCertificate.objects.filter(card=card).select_related("certificate")
    }
    assert {c.status for c in old.values()} == {"valid"}

    # --- the clock moved into the window: the beat task invites, a station renews ---------------
    settings.RENEWAL_CERTIFICATE_WINDOW_DAYS = 90
    assert expiry_sweep_task.apply().get()["invited"] == 0
    moved = min(c.not_after for c in old.values()) - dt.timedelta(days=30)
    with time_machine.travel(moved, tick=True):
        assert expiry_sweep_task.apply().get()["invited"] == 1
        # the holder's nearby station, enrolled at that time (the first one's token has expired)
        kiosk = _enrolled("e2e-kiosk", scene.pool.code, live_server, tmp_path)
        renewed = _station(
            "--credential", str(kiosk), "renew", "--reader", CONTACT_READER,
            cwd=tmp_path, stdin=f"{pin}\n",
        )  # fmt: skip
        output = renewed.stdout + renewed.stderr
        assert renewed.returncode == 0, output
        assert ": done (" in output, output
        assert not re.search(r"(?<!\d)" + pin + r"(?!\d)", output)
        attime = str(int(moved.timestamp()) + 3600)
    assert CardRenewal.objects.get(card=card).status == "done"
    assert RenewalInvitation.objects.get(card=card).status == "done"
    new = {
        link.slot: link.certificate
        for link in CardCertificate.objects.filter(
            card=card, slot__in=("auth", "sign")
        ).select_related("certificate", "certificate__issuer")
    }
    assert {c.status for c in new.values()} == {"valid"}
    assert {c.pk for c in new.values()}.isdisjoint(c.pk for c in old.values())

    # --- OpenSC lists the new certificates; pkcs11-tool signs with the unchanged PIN -------------
    atr = ":".join(f"{b:02x}" for b in virtual.contact.atr)
    conf = tmp_path / "opensc.conf"
    conf.write_text(OPENSC_CONF.format(atr=atr))
    env = dict(os.environ, OPENSC_CONF=str(conf))
    listing = _run("pkcs15-tool", "--reader", "0", "--list-certificates", cwd=tmp_path, env=env)
    assert listing.count("X.509 Certificate") == 2, listing
    for slot, key_id in (("auth", "01"), ("sign", "02")):
        read = _run(
            "pkcs15-tool", "--reader", "0", "--read-certificate", key_id, cwd=tmp_path, env=env
        )
        shown = x509.load_pem_x509_certificate(read[read.index("-----BEGIN") :].encode())
        assert shown.serial_number == int(new[slot].serial), slot
    module = next((p for p in MODULES if Path(p).exists()), None)
    assert module is not None
    objects = _run(
        "pkcs11-tool", "--module", module, "--slot-index", "0", "-O", cwd=tmp_path, env=env
    )
    assert objects.count("Certificate Object") == 2, objects
    message = b"relying party challenge after renewal"
    (tmp_path / "data.bin").write_bytes(message)
    signed = _run(
        "pkcs11-tool", "--module", module, "--slot-index", "0", "--login", "--pin", pin,
        "--sign", "--id", "01", "-m", "SHA256-RSA-PKCS", "--input-file", "data.bin",
        "--output-file", "sig.bin",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert not re.search(r"(?<!\d)" + pin + r"(?!\d)", signed)
    public = x509.load_der_x509_certificate(bytes(new["auth"].der)).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify((tmp_path / "sig.bin").read_bytes(), message, padding.PKCS1v15(), hashes.SHA256())

    # --- the new certificates verify and are good in OCSP; the old ones revoked superseded -------
    issuer = new["auth"].issuer
    (tmp_path / "issuer.pem").write_bytes(_pem(bytes(issuer.certificate_der)))
    root = issuer.parent
    while root.parent is not None:
        root = root.parent
    (tmp_path / "root.pem").write_bytes(_pem(bytes(root.certificate_der)))
    for name, cert in (*new.items(), *((f"old-{s}", c) for s, c in old.items())):
        (tmp_path / f"{name}.pem").write_bytes(_pem(bytes(cert.der)))
    verified = _run(
        "openssl", "verify", "-attime", attime, "-CAfile", "root.pem", "-untrusted", "issuer.pem",
        "auth.pem", "sign.pem",
        cwd=tmp_path,
    )  # fmt: skip
    assert "auth.pem: OK" in verified and "sign.pem: OK" in verified, verified
    answers = {}
    for name in ("auth", "sign", "old-auth", "old-sign"):  # the responder takes one at a time
        answers[name] = _run(
            "openssl", "ocsp", "-issuer", "issuer.pem", "-cert", f"{name}.pem",
            "-url", f"{live_server.url}/ocsp", "-CAfile", "root.pem", "-no_nonce",
            "-validity_period", "300000000",
            cwd=tmp_path,
        )  # fmt: skip
    for name in answers:
        assert "Response verify OK" in answers[name], answers[name]
    assert answers["auth"].startswith("auth.pem: good"), answers["auth"]
    assert answers["sign"].startswith("sign.pem: good"), answers["sign"]
    for name in ("old-auth", "old-sign"):
        assert f"{name}.pem: revoked" in answers[name], answers[name]
        assert "Reason: superseded" in answers[name], answers[name]

    crl = services.crl_publish(
        authority=issuer.short_name, kind=CrlKind.FULL, actor=Actor.system("e2e")
    )
    (tmp_path / "full.crl").write_bytes(bytes(crl.der))
    text = _run("openssl", "crl", "-inform", "DER", "-in", "full.crl", "-noout", "-text",
                cwd=tmp_path)  # fmt: skip
    flat = text.replace(":", "").upper()
    for cert in old.values():
        assert f"{int(cert.serial):X}" in flat
    for cert in new.values():
        assert f"{int(cert.serial):X}" not in flat
    assert text.count("Superseded") == 2, text
