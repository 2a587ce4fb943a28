"""The PKI's beat task goes through the broker to a real worker on the signing queue."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import transaction

from core.actors import Actor
from pki import services
from pki.choices import CrlKind
from pki.domain.reasons import RevocationReason
from pki.models import CrlPublication
from pki.tasks import pki_publish_task
from tests.conftest import wait_until
from tests.pki.conftest import TEST_HIERARCHY, pki_software, software_key_dir  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture
def signing_worker_env(pki_software: str, software_key_dir: Path, monkeypatch) -> None:  # noqa: F811
    """The worker opens the same software CA keys and hierarchy as this test process."""
    monkeypatch.setenv("PKI_SOFTWARE_KEY_DIR", str(software_key_dir))
    monkeypatch.setenv("PKI_KEY_PASSPHRASE", "test-passphrase-not-secret")
    monkeypatch.setenv("PKI_HIERARCHY_FILE", str(TEST_HIERARCHY))


@pytest.mark.django_db(transaction=True)
def test_a_revocation_reaches_the_crl_through_the_worker(signing_worker_env, celery_worker_process):
    from cryptography.hazmat.primitives.asymmetric import rsa

    from pki.domain.names import Holder

    issuing = "ACI-FO-PP-TEST"
    target = services.certificate_issue(
        authority=issuing,
        profile="cps_auth",
        actor=Actor.system("t"),
        public_key=rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(),
        holder=Holder(
            national_id="810002813839", surname="DUPONT", given_name="JEAN", title="Médecin",
            card_serial="2600301752", profession_code=10,
        ),
    )  # fmt: skip
    services.certificate_revoke(
        certificate_id=target.pk, reason=RevocationReason.KEY_COMPROMISE, actor=Actor.system("t")
    )
    before = CrlPublication.objects.filter(authority__short_name=issuing).count()
    with transaction.atomic():
        transaction.on_commit(pki_publish_task.delay)

    def published() -> CrlPublication | None:
        return (
            CrlPublication.objects.filter(authority__short_name=issuing, kind=CrlKind.FULL)
            .order_by("-number")
            .first()
            if CrlPublication.objects.filter(authority__short_name=issuing).count() > before
            else None
        )

    crl = wait_until(published)
    from cryptography import x509

    parsed = x509.load_der_x509_crl(bytes(crl.der))
    assert parsed.get_revoked_certificate_by_serial_number(int(target.serial)) is not None
