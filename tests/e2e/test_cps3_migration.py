"""CPS3 → CPS4 migration end to end (issue 17): a small CPS3 export imported, a wave launched by one
operator and approved by a second, its request created by a real Celery worker, the CPS4
personalized through pcscd by a real station process and activated; past the grace period the
holder's CPS3 is revoked ``superseded`` (OCSP and CRL checked with the OpenSSL command line), and
the dashboard counts it all."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from django.utils import timezone

from tests.cardsim.conftest import pcscd  # noqa: F401 - the shared pcscd fixture
from tests.cardsim.pcscd_support import CONTACT_READER, Simulator
from tests.conftest import wait_until
from tests.e2e.test_cps4_issuance import _station, sim, worker_env  # noqa: F401 - fixtures

pytestmark = [
    pytest.mark.integration,
    pytest.mark.pcscd,
    pytest.mark.django_db(transaction=True),
]

CPS3_SERIAL = "80250000CAFE0001"


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)


def test_a_cps3_holder_migrated_to_a_cps4(
    worker_env: None,  # noqa: F811
    scene: Any,
    celery_worker_process: Any,
    live_server: Any,
    sim: Simulator,  # noqa: F811
    tmp_path: Path,
    make_user: Any,
) -> None:
    from cardsim.card import Card as VirtualCard
    from cardsim.card import load_state
    from cms.choices import CardStatus
    from cms.models import Card, CardRequest
    from cms.services.cards import card_transition
    from core.actors import Actor
    from core.dual_control import act_approve
    from cps3.dashboard import dashboard
    from cps3.generator import csv_bytes
    from cps3.handover import handover_sweep
    from cps3.inventory import COLUMNS, cps3_import
    from cps3.models import Cps3Card
    from cps3.waves import WaveSpec, summaries_refresh, wave_create, wave_launch_request
    from demo import setup
    from pki import services
    from pki.domain.names import Holder as CertificateHolder
    from pki.models import CertificateAuthority, CrlKind

    # --- the registry and the CPS3 export: the holder's CPS3 certificates are ours ------------
    holder = setup.holder_demo()
    authority = CertificateAuthority.objects.get(short_name="ACI-FO-PP-TEST")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    old = {
        slot: services.certificate_issue(
            authority=authority.short_name,
            profile=f"cps_{slot}",
            actor=Actor.system("legacy CPS3 issuance"),
            public_key=key.public_key(),
            holder=CertificateHolder(
                national_id=holder.national_id,
                surname="MARTIN",
                given_name="CLAIRE",
                title="Médecin",
                card_serial="0000000042",
                profession_code=10,
                email="claire.martin@example.org",
            ),
        )
        for slot in ("auth", "sign")
    }
    issuer = f"CN={authority.common_name},O=ASIP-SANTE,C=FR"
    today = timezone.localdate()
    row = {
        "national_id": holder.national_id, "last_name": "MARTIN", "first_name": "Claire",
        "profession": "10", "departement": "75", "chip_serial": CPS3_SERIAL, "card_type": "CPS",
        "issued_on": (today - dt.timedelta(days=700)).isoformat(),
        "expires_on": (today + dt.timedelta(days=400)).isoformat(), "card_status": "active",
    }  # fmt: skip
    for slot, cert in old.items():
        row |= {
            f"{slot}_issuer": issuer, f"{slot}_serial": f"{int(cert.serial):X}",
            f"{slot}_not_after": cert.not_after.date().isoformat(), f"{slot}_status": "valid",
        }  # fmt: skip
    content = csv_bytes(iter([list(COLUMNS), [row.get(c, "") for c in COLUMNS]]))
    result = cps3_import(
        stream=io.BytesIO(content), filename="cps3.csv", size=len(content),
        actor=Actor.system("tests"),
    )  # fmt: skip
    assert (result.inserted, result.exceptions) == (1, 0)
    inventory = Cps3Card.objects.get(chip_serial=CPS3_SERIAL)
    assert inventory.auth_certificate_id == old["auth"].pk
    assert inventory.sign_certificate_id == old["sign"].pk

    # --- the blank CPS4 in the reader, stock of the wave's site ---------------------------------
    virtual = VirtualCard(load_state(sim.state))
    setup.blank_card_register(
        product=scene.product, pool=scene.pool, chip_serial=virtual.serial.hex(),
        desfire_uid=virtual.desfire_chip.state.uid.hex(),
    )  # fmt: skip

    # --- a wave: one operator plans and asks, a second approves; the worker makes the request ---
    lead, second = make_user("issuance_operator"), make_user("issuance_operator")
    wave = wave_create(
        spec=WaveSpec(
            name="paris", pool_id=scene.pool.pk, daily_capacity=50, start_on=today,
            departements=("75",), product_id=scene.product.pk,
        ),
        user=lead,
    )  # fmt: skip
    assert wave.planned == 1
    act = wave_launch_request(wave_id=wave.pk, user=lead, reason="Paris, first wave")
    act_approve(act_id=act.pk, user=second)
    request = wait_until(
        lambda: CardRequest.objects.filter(kind="migration", status="queued").first()
    )
    assert request.holder_id == holder.pk and request.approved_by_id == second.pk
    legacy = request.replaces
    assert legacy is not None and legacy.chip_serial == CPS3_SERIAL and legacy.migration_overlap

    # --- personalization through pcscd by a real station process ------------------------------
    credential = tmp_path / "station" / "credential.json"
    from cms.personalization.stations import station_create

    issued = station_create(
        site_code=scene.pool.code, name="migration-station", caller=setup.SYSTEM
    )
    enrolled = _station(
        "--credential", str(credential), "enroll", "--cms", live_server.url, "--code", issued.code,
        cwd=tmp_path,
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
    run = _station(
        "--credential", str(credential), "run", "--reader", CONTACT_READER, "--once", cwd=tmp_path
    )
    assert run.returncode == 0, run.stdout + run.stderr
    request.refresh_from_db()
    cps4 = request.card
    assert cps4 is not None and cps4.status == CardStatus.ISSUED

    # --- both cards work during the overlap; the CPS4 is activated ------------------------------
    card_transition(card_id=cps4.pk, transition="activate", caller=scene.operator)
    assert handover_sweep() == 0  # within the grace period: the CPS3 keeps working
    assert Card.objects.filter(holder=holder, status=CardStatus.ACTIVE).count() == 2

    # --- past the grace period the daily sweep revokes the CPS3 (superseded) ------------------
    assert handover_sweep(timezone.now() + dt.timedelta(days=31)) == 1
    legacy.refresh_from_db()
    assert legacy.status == CardStatus.REVOKED and legacy.revoke_reason == "superseded"
    for cert in old.values():
        cert.refresh_from_db()
        assert cert.status == "revoked" and cert.revocation_reason == "superseded"

    root = next(ca for ca in CertificateAuthority.objects.all() if ca.parent_id is None)
    (tmp_path / "old.pem").write_bytes(_pem(bytes(old["auth"].der)))
    (tmp_path / "issuer.pem").write_bytes(_pem(bytes(authority.certificate_der)))
    (tmp_path / "root.pem").write_bytes(_pem(bytes(root.certificate_der)))
    ocsp = subprocess.run(
        ["openssl", "ocsp", "-issuer", "issuer.pem", "-cert", "old.pem", "-url",
         f"{live_server.url}/ocsp", "-CAfile", "root.pem", "-no_nonce"],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert "old.pem: revoked" in ocsp.stdout, ocsp.stdout + ocsp.stderr
    assert "Reason: superseded" in ocsp.stdout, ocsp.stdout

    crl = services.crl_publish(
        authority=authority.short_name, kind=CrlKind.FULL, actor=Actor.system("tests")
    )
    (tmp_path / "full.crl").write_bytes(bytes(crl.der))
    text = subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", "full.crl", "-noout", "-text"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for cert in old.values():
        entry = text.split(f"Serial Number: {int(cert.serial):X}")[1].split("Serial Number:")[0]
        assert "Superseded" in entry, entry

    # --- the dashboard counts it ------------------------------------------------------------
    summaries_refresh(wave_ids=[wave.pk])
    totals = dashboard(wave.pk)["totals"]
    assert totals == {
        "planned": 1,
        "requested": 1,
        "personalized": 1,
        "activated": 1,
        "cps3_revoked": 1,
    }
