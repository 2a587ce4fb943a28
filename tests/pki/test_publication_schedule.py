"""The beat task: delta and full CRLs on their own cadence, decided from the database; responder
certificates renewed near expiry."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
import time_machine
from cryptography import x509
from django.core.management import call_command
from django.test import Client

from core.actors import Actor
from core.models import AuditEvent
from pki import authorities, services, tasks
from pki.choices import CrlKind
from pki.models import CertificateAuthority, CrlPublication
from tests.pki.helpers import ISSUING, ROOT, holder
from tests.pki.keys_pool import rsa_key

ACTOR = Actor.system("tests")
# shortly after the fixture created the hierarchy (responder certificates last 90 days)
START = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)


def _kinds() -> list[tuple[str, str]]:
    return list(
        CrlPublication.objects.filter(authority__short_name=ISSUING)
        .order_by("number")
        .values_list("kind", "authority__short_name")
    )


@pytest.fixture
def cadence(settings: Any) -> None:
    settings.PKI_DELTA_CRL_INTERVAL_SECONDS = 3600
    settings.PKI_FULL_CRL_INTERVAL_SECONDS = 4 * 3600
    settings.PKI_OCSP_RESPONDER_RENEWAL_DAYS = 30


def test_delta_often_full_less_often_and_resume_from_database(
    pki_software: str, cadence: None
) -> None:
    with time_machine.travel(START, tick=False):
        tasks.pki_publish_task()
    assert [k for k, _ in _kinds()] == ["full", "delta"]
    with time_machine.travel(START + dt.timedelta(minutes=30), tick=False):
        tasks.pki_publish_task()  # nothing due
    assert len(_kinds()) == 2
    with time_machine.travel(START + dt.timedelta(minutes=61), tick=False):
        tasks.pki_publish_task()
    assert [k for k, _ in _kinds()] == ["full", "delta", "delta"]
    # a restarted process has no memory: the stored publications decide
    authorities.forget()
    with time_machine.travel(START + dt.timedelta(minutes=122), tick=False):
        tasks.pki_publish_task()
        tasks.pki_publish_task()  # a redelivered run publishes nothing more
    assert [k for k, _ in _kinds()] == ["full", "delta", "delta", "delta"]
    with time_machine.travel(START + dt.timedelta(hours=4, minutes=1), tick=False):
        tasks.pki_publish_task()
    kinds = [k for k, _ in _kinds()]
    assert kinds[-2:] == ["full", "delta"]  # new full, and a delta on the new base
    full = CrlPublication.objects.filter(authority__short_name=ISSUING, kind="full").latest(
        "number"
    )
    delta = CrlPublication.objects.filter(authority__short_name=ISSUING, kind="delta").latest(
        "number"
    )
    assert delta.base_number == full.number
    root_kinds = CrlPublication.objects.filter(authority__short_name=ROOT).values_list(
        "kind", flat=True
    )
    assert list(root_kinds) == ["full", "full"]


def test_beat_signs_only_missing_or_expiring_ocsp_answers(
    pki_software: str, cadence: None, settings: Any
) -> None:
    settings.PKI_OCSP_REFRESH_MARGIN_SECONDS = 6 * 3600
    with time_machine.travel(START, tick=False):
        services.certificate_issue(
            authority=ISSUING,
            profile="cps_auth",
            public_key=rsa_key("holder31").public_key(),
            holder=holder(31),
            actor=ACTOR,
        )
        lines = services.pki_publish_all(actor=ACTOR, due_only=True)
    assert f"{ISSUING}: 0 OCSP responses signed" in lines  # signed at issuance
    # validity 24 h: 19 h later the answer is within the 6 h margin
    with time_machine.travel(START + dt.timedelta(hours=19), tick=False):
        lines = services.pki_publish_all(actor=ACTOR, due_only=True)
    assert f"{ISSUING}: 1 OCSP responses signed" in lines


def test_responder_renewed_near_expiry_with_new_key_and_audit(
    pki_software: str, cadence: None, client: Client
) -> None:
    ca = CertificateAuthority.objects.get(short_name=ISSUING)
    old = ca.ocsp_responder
    assert old is not None
    old_key_handle = ca.ocsp_key_handle
    cert = services.certificate_issue(
        authority=ISSUING,
        profile="cps_auth",
        public_key=rsa_key("holder32").public_key(),
        holder=holder(32),
        actor=ACTOR,
    )
    early = old.not_after - dt.timedelta(days=31)
    with time_machine.travel(early, tick=False):
        assert (
            services.ocsp_responder_renew(
                authority=ISSUING, actor=ACTOR, within=dt.timedelta(days=30)
            )
            is None
        )
    with time_machine.travel(old.not_after - dt.timedelta(days=29), tick=False):
        out = io.StringIO()
        call_command("pki_publish", "--due", stdout=out)
        call_command("pki_publish", "--due", stdout=out)  # renewed once only
    assert out.getvalue().count(f"{ISSUING}: OCSP responder renewed") == 1
    assert f"{ISSUING}: 1 OCSP responses signed" in out.getvalue()
    ca.refresh_from_db()
    assert ca.ocsp_responder_id != old.pk
    assert ca.ocsp_key_handle != old_key_handle
    new = x509.load_der_x509_certificate(bytes(ca.ocsp_responder.der))  # type: ignore[union-attr]
    old_cert = x509.load_der_x509_certificate(bytes(old.der))
    assert new.public_key() != old_cert.public_key()
    assert new.not_valid_after_utc > old_cert.not_valid_after_utc
    event = AuditEvent.objects.get(action="pki.ocsp_responder_renew", details__authority=ISSUING)
    assert event.details["replaces"] == format(int(old.serial), "x")
    # answers are now signed by the new responder
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp

    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(
            x509.load_der_x509_certificate(bytes(cert.der)),
            x509.load_der_x509_certificate(bytes(ca.certificate_der)),
            hashes.SHA1(),
        )
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    reply = client.post("/ocsp", request, content_type="application/ocsp-request")
    answer = ocsp.load_der_ocsp_response(reply.content)
    assert answer.certificates[0] == new


def test_delta_before_any_full_is_a_conflict(pki_software: str) -> None:
    from core.errors import Conflict

    with pytest.raises(Conflict):
        services.crl_publish(authority=ISSUING, kind=CrlKind.DELTA, actor=ACTOR)
