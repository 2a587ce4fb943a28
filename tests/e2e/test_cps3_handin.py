"""The CPS3 handed in at the delivery of a CPS4 (issue 17 §5), through pcscd: a real station
process reads the virtual CPS3 (chip serial, certificates) and reports it; the CMS matches it to
the holder of the CPS4 delivered and revokes it, or refuses the hand-over with its reason."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.cardsim.conftest import pcscd  # noqa: F401 - the shared pcscd fixture
from tests.cardsim.pcscd_support import CONTACT_READER, Simulator, simulator_running
from tests.e2e.test_cps4_issuance import _station

pytestmark = [
    pytest.mark.integration,
    pytest.mark.pcscd,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def cps3_sim(pcscd: object, tmp_path: Path) -> Iterator[Simulator]:  # noqa: F811
    with simulator_running(Simulator(tmp_path, product="cps3")) as simulator:
        yield simulator


def _migrated(
    holder: Any, legacy_serial: str, number: int, cps3: Any, cps4: Any
) -> tuple[Any, Any]:
    """A holder's CPS3 in overlap and the CPS4 that replaces it (already issued and active)."""
    from cms.choices import CardStatus, RequestKind, RequestStatus
    from cms.models import Card, CardRequest

    legacy = Card.objects.create(
        chip_serial=legacy_serial, product=cps3, holder=holder, card_type="CPS",
        status=CardStatus.ACTIVE, migration_overlap=True,
    )  # fmt: skip
    serial = f"8025000001{number:010d}"
    new = Card.objects.create(
        chip_serial=serial, card_number=serial, product=cps4, holder=holder, card_type="CPS",
        status=CardStatus.ACTIVE,
    )  # fmt: skip
    CardRequest.objects.create(
        kind=RequestKind.MIGRATION, status=RequestStatus.DONE, holder=holder, product=cps4,
        replaces=legacy, card=new, requested_by_label="tests",
    )  # fmt: skip
    return legacy, new


def test_the_cps3_handed_in_is_matched_or_refused(
    scene: Any, live_server: Any, cps3_sim: Simulator, tmp_path: Path
) -> None:
    from cardsim import cps3 as virtual_cps3
    from cms.models import Product
    from cms.personalization.stations import station_create
    from core.actors import Actor
    from core.models import AuditEvent
    from cps3.generator import csv_bytes, national_id
    from cps3.inventory import COLUMNS, cps3_import
    from demo import setup

    facts = virtual_cps3.holder()
    serial = facts["serial"].upper()
    certificates = {
        slot: x509.load_der_x509_certificate(
            (virtual_cps3.FIXTURES / f"cps3-{name}.crt.der").read_bytes()
        )
        for slot, name in (("auth", "auth"), ("sign", "sig"))
    }
    holder = setup.holder_demo()
    row = {
        "national_id": holder.national_id, "last_name": "MARTIN", "first_name": "Claire",
        "profession": "10", "chip_serial": serial, "card_type": "CPS",
        "issued_on": "2024-01-01", "expires_on": "2027-01-01", "card_status": "active",
    }  # fmt: skip
    for slot, certificate in certificates.items():
        row |= {
            f"{slot}_issuer": certificate.issuer.rfc4514_string(),
            f"{slot}_serial": f"{certificate.serial_number:x}",
            f"{slot}_not_after": certificate.not_valid_after_utc.date().isoformat(),
            f"{slot}_status": "valid",
        }
    content = csv_bytes(iter([list(COLUMNS), [row.get(c, "") for c in COLUMNS]]))
    cps3_import(
        stream=io.BytesIO(content), filename="e.csv", size=len(content),
        actor=Actor.system("tests"),
    )  # fmt: skip
    cps3 = Product.objects.get(name="CPS3")
    legacy, cps4 = _migrated(holder, serial, 1, cps3, scene.product)
    other_holder = setup.holder_demo(national_id(1))
    other_legacy, other_cps4 = _migrated(other_holder, "80250000DEAD0002", 2, cps3, scene.product)

    issued = station_create(site_code=scene.pool.code, name="delivery-desk", caller=setup.SYSTEM)
    credential = tmp_path / "station" / "credential.json"
    enrolled = _station(
        "--credential", str(credential), "enroll", "--cms", live_server.url, "--code", issued.code,
        cwd=tmp_path,
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr

    # The card in the reader is not the one the other holder's CPS4 replaces: refused.
    refused = _station(
        "--credential", str(credential), "handin", "--reader", CONTACT_READER,
        "--cps4", other_cps4.card_number, cwd=tmp_path,
    )  # fmt: skip
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "is not the CPS3 this holder's CPS4 replaces" in refused.stdout, refused.stdout
    other_legacy.refresh_from_db()
    assert other_legacy.status == "ACTIVE"
    assert AuditEvent.objects.filter(action="cps3.handin_refused").count() == 1

    # The right holder: matched by chip serial and certificates, and revoked at once.
    taken = _station(
        "--credential", str(credential), "handin", "--reader", CONTACT_READER,
        "--cps4", cps4.card_number, cwd=tmp_path,
    )  # fmt: skip
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert "taken back and revoked" in taken.stdout
    legacy.refresh_from_db()
    assert legacy.status == "REVOKED" and legacy.revoke_reason == "superseded"
    assert AuditEvent.objects.filter(action="cps3.handed_in", object_id=str(legacy.pk)).exists()
