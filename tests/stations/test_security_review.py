"""Security-review fixes on the server side of personalization: station certificates revoked
when replaced or disabled, the access credential sealed, audited state changes, no registry
probing by stations, sealed secrets dropped when no resume can happen, transport masters."""

from __future__ import annotations

import io
import secrets
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.stations.conftest import card_queued, link_of

pytestmark = pytest.mark.django_db(transaction=True)

IDENTIFICATION_APDUS = 3  # what the station sends before its claim (ATR, EF.SN.ICC, UID)


@pytest.fixture(scope="module")
def station_csr() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "station")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def _enroll_with_certificate(scene: Any, csr: bytes, name: str = "bench-c") -> Any:
    from cms.personalization.stations import station_create, station_enroll
    from demo import setup

    issued = station_create(site_code=scene.pool.code, name=name, caller=setup.SYSTEM)
    return station_enroll(code=issued.code, csr_pem=csr)


# --- B: station certificates ---------------------------------------------------------------------


def test_re_enrollment_revokes_the_previous_station_certificate_as_superseded(scene, station_csr):
    from cms.personalization.stations import station_code_renew, station_enroll
    from core.models import AuditEvent
    from demo import setup
    from pki.models import Certificate

    first = _enroll_with_certificate(scene, station_csr)
    old_id = first.station.certificate_id
    assert old_id is not None
    renewed = station_code_renew(station_id=first.station.pk, caller=setup.SYSTEM)
    second = station_enroll(code=renewed.code, csr_pem=station_csr)

    old = Certificate.objects.get(pk=old_id)
    assert old.status == "revoked" and old.revocation_reason == "superseded"
    new = Certificate.objects.get(pk=second.station.certificate_id)
    assert new.status == "valid" and new.pk != old.pk
    assert second.station.certificate_serial == format(int(new.serial), "X")
    event = AuditEvent.objects.filter(action="station.enroll").order_by("-seq").first()
    assert event is not None
    assert event.details["certificate_revoked"] == format(int(old.serial), "X")
    assert AuditEvent.objects.filter(
        action="pki.certificate_revoke", object_id=str(old.pk)
    ).exists()


def test_re_enrollment_without_a_csr_still_revokes_the_old_certificate(scene, station_csr):
    from cms.personalization.stations import station_code_renew, station_enroll
    from demo import setup
    from pki.models import Certificate

    first = _enroll_with_certificate(scene, station_csr)
    old_id = first.station.certificate_id
    renewed = station_code_renew(station_id=first.station.pk, caller=setup.SYSTEM)
    second = station_enroll(code=renewed.code)
    assert Certificate.objects.get(pk=old_id).status == "revoked"
    assert second.station.certificate_id is None and second.station.certificate_serial == ""


def test_disabling_a_station_revokes_its_certificate_once(scene, station_csr):
    from cms.personalization.stations import station_disable
    from core.models import AuditEvent
    from demo import setup
    from pki.models import Certificate

    enrolled = _enroll_with_certificate(scene, station_csr)
    cert_id = enrolled.station.certificate_id
    station_disable(station_id=enrolled.station.pk, caller=setup.SYSTEM)
    station_disable(station_id=enrolled.station.pk, caller=setup.SYSTEM)  # a no-op

    cert = Certificate.objects.get(pk=cert_id)
    assert cert.status == "revoked" and cert.revocation_reason == "cessation_of_operation"
    assert AuditEvent.objects.filter(action="pki.certificate_revoke").count() == 1
    event = AuditEvent.objects.get(action="station.disable")
    assert event.details["certificate_revoked"] == format(int(cert.serial), "X")


# --- C: the access credential is sealed ---------------------------------------------------------


def _access_file(virtual_card: Any) -> bytes:
    from cards.products import DESFIRE_ACCESS_FILE

    for app in virtual_card.desfire_chip.state.apps.values():
        if DESFIRE_ACCESS_FILE in app.files:
            return bytes(app.files[DESFIRE_ACCESS_FILE].data[:16])
    raise AssertionError("the card has no access credential file")


def _row_text(model: Any, **filters: Any) -> str:
    out = []
    for row in model.objects.filter(**filters).values():
        for value in row.values():
            out.append(bytes(value).hex() if isinstance(value, bytes | memoryview) else str(value))
    return " ".join(out).upper()


def test_the_access_credential_is_never_stored_in_clear(scene, virtual_card):
    from cms.models import PersonalizationSession
    from core.models import AuditEvent
    from personalization_station.relay import personalize

    card_queued(scene, virtual_card)
    outcome = personalize(scene.api(), link_of(virtual_card))
    assert outcome.state == "done", outcome.message

    credential = _access_file(virtual_card).hex().upper()
    assert credential != "00" * 16
    assert credential not in _row_text(PersonalizationSession)
    assert credential not in _row_text(AuditEvent)
    assert not any(f.name == "access_credential" for f in PersonalizationSession._meta.fields)
    assert PersonalizationSession.objects.get().sealed_secrets is None


def test_a_resumed_session_writes_the_same_sealed_access_credential(scene, virtual_card):
    from cms.models import PersonalizationSession
    from cms.personalization.sealing import secrets_open
    from personalization_station.relay import personalize

    interrupted = _interrupted(scene, virtual_card)
    sealed = secrets_open(interrupted).access_credential
    assert sealed.hex().upper() not in _row_text(PersonalizationSession)

    virtual_card.insert()
    second = personalize(scene.api(), link_of(virtual_card))
    assert second.state == "done", second.message
    assert _access_file(virtual_card) == sealed


# --- E: audited state changes -------------------------------------------------------------------


def test_job_creation_and_checkpoints_are_audited_once_each(scene, virtual_card):
    from cms.models import PersonalizationJob, PersonalizationSession
    from cms.personalization.jobs import jobs_sync
    from core.models import AuditEvent
    from personalization_station.relay import personalize

    card_queued(scene, virtual_card)
    jobs_sync()
    job = PersonalizationJob.objects.get()
    created = AuditEvent.objects.filter(action="personalization.job_create", object_id=str(job.pk))
    assert created.count() == 1
    assert created.get().details["card_id"] == str(job.card_id)

    outcome = personalize(scene.api(), link_of(virtual_card))
    assert outcome.state == "done", outcome.message
    session = PersonalizationSession.objects.get()
    checkpoints = AuditEvent.objects.filter(
        action="personalization.checkpoint", object_id=str(session.pk)
    ).order_by("seq")
    phases = [event.details["phase"] for event in checkpoints]
    # the program's starting point (no phase done yet), then one event per completed phase
    assert phases == ["", *session.checkpoint["completed"]]
    assert checkpoints.count() < session.apdus / 4  # per phase, not per APDU


def test_the_rollback_switch_is_audited(scene, virtual_card):
    from cms.models import PersonalizationSession
    from core.models import AuditEvent
    from personalization_station.relay import personalize

    card_queued(scene, virtual_card)
    virtual_card.faults.sw_at[virtual_card.apdu_count + IDENTIFICATION_APDUS + 30] = 0x6581
    outcome = personalize(scene.api(), link_of(virtual_card))
    assert outcome.state == "wiped", outcome.message
    session = PersonalizationSession.objects.get()
    assert session.mode == "rollback"
    event = AuditEvent.objects.get(
        action="personalization.rollback_start", object_id=str(session.pk)
    )
    assert event.details["card_id"] == str(session.card_id) and "6581" in event.details["error"]


# --- F: no registry probing -------------------------------------------------------------------


def test_a_station_learns_nothing_of_cards_outside_its_site(scene, virtual_card, key_pool):
    from cardsim.card import Card as VirtualCard
    from cms.personalization.claims import job_claim
    from cms.personalization.jobs import CardIdentity, jobs_sync
    from core.errors import NotFound
    from demo import setup

    card_queued(scene, virtual_card)
    jobs_sync()
    other_site = setup.site(code="other-site", name="Other")
    stranger = setup.station_enrolled(other_site, name="stranger").station

    def refusal(serial: str) -> tuple[str, dict[str, Any]]:
        with pytest.raises(NotFound) as caught:
            job_claim(station=stranger, identity=CardIdentity(atr="3B00", chip_serial=serial))
        message = caught.value.message.replace(serial.upper(), "<serial>")
        return message, dict(caught.value.extra or {})

    known = refusal(virtual_card.serial.hex())
    unknown = refusal(VirtualCard.blank("cps4", keygen=key_pool).serial.hex())
    assert known == (unknown[0], known[1])
    assert "card_status" not in known[1] and "site" not in known[0].replace("station's site", "")


# --- H: sealed secrets dropped when no resume can happen --------------------------------------


def _interrupted(scene: Any, virtual_card: Any) -> Any:
    from cms.models import PersonalizationSession
    from personalization_station.relay import personalize

    card_queued(scene, virtual_card)
    virtual_card.faults.tear_at = virtual_card.apdu_count + IDENTIFICATION_APDUS + 60
    assert personalize(scene.api(), link_of(virtual_card)).state == "interrupted"
    session = PersonalizationSession.objects.get(status="interrupted")
    assert session.sealed_secrets is not None
    return session


def test_abandoning_an_interrupted_job_drops_its_sealed_secrets(scene, virtual_card):
    from cms.models import Card, CardRequest, PersonalizationSession
    from cms.personalization.jobs import job_abandon
    from core.models import AuditEvent
    from demo import setup

    session = _interrupted(scene, virtual_card)
    job_abandon(job_id=session.job_id, caller=setup.SYSTEM, note="card lost in the post")
    job_abandon(job_id=session.job_id, caller=setup.SYSTEM, note="again")  # a no-op

    assert not PersonalizationSession.objects.filter(sealed_secrets__isnull=False).exists()
    assert Card.objects.get(pk=session.card_id).status == "SPOILED"
    assert CardRequest.objects.get(jobs__pk=session.job_id).status == "failed"
    dropped = AuditEvent.objects.get(action="personalization.secrets_drop")
    assert dropped.details == {
        "reason": "job abandoned",
        "sessions": 1,
        "card_id": str(session.card_id),
    }
    assert AuditEvent.objects.filter(action="personalization.job_abandon").count() == 1


def test_only_operators_and_officers_abandon_a_job(scene, virtual_card, make_user):
    from cms.callers import Caller
    from cms.personalization.jobs import job_abandon
    from core.errors import Forbidden

    session = _interrupted(scene, virtual_card)
    with pytest.raises(Forbidden):
        job_abandon(job_id=session.job_id, caller=Caller.for_user(make_user("auditor")))


def test_the_sweep_drops_secrets_of_a_job_whose_request_left_personalization(scene, virtual_card):
    from cms.models import CardRequest, PersonalizationSession
    from cms.personalization.jobs import sessions_secrets_sweep
    from core.models import AuditEvent

    session = _interrupted(scene, virtual_card)
    assert sessions_secrets_sweep() == 0  # the job can still resume
    # A request closed by another path (cancelled, rejected by a future rule): no resume.
    CardRequest.objects.filter(jobs__pk=session.job_id).update(status="rejected")
    assert sessions_secrets_sweep() == 1
    assert PersonalizationSession.objects.get(pk=session.pk).sealed_secrets is None
    assert AuditEvent.objects.filter(action="personalization.secrets_drop").count() == 1
    assert sessions_secrets_sweep() == 0


# --- D: DESFire transport masters in the card key store ----------------------------------------


def test_transport_masters_are_imported_from_stdin_and_diversified_per_card(card_keys, db):
    from django.core.management import CommandError, call_command

    from cards.crypto import an10922_diversify_aes128
    from cms.personalization.keys import FACTORY_TRANSPORT_KEY, transport_key
    from core.errors import PolicyViolation
    from core.models import AuditEvent

    version = 200 + secrets.randbelow(50)  # the key directory is shared by the session
    master = secrets.token_bytes(16)
    m = bytes.fromhex("04112233445566") + bytes(3) + b"ANS-CPS4"
    with pytest.raises(PolicyViolation, match=f"--version {version}"):
        transport_key(version, m=m)
    out = io.StringIO()
    call_command(
        "card_keys_import_transport",
        "--version",
        str(version),
        stdin=io.StringIO(master.hex() + "\n"),
        stdout=out,
    )
    assert f"desfire-transport.v{version}" in out.getvalue() and master.hex() not in out.getvalue()
    assert transport_key(version, m=m) == an10922_diversify_aes128(master, m)
    assert transport_key(0, m=m) == FACTORY_TRANSPORT_KEY
    event = AuditEvent.objects.get(action="card_keys.transport_import")
    assert master.hex() not in str(event.details) and event.details == {"version": version}
    with pytest.raises(CommandError, match="already holds"):
        call_command(
            "card_keys_import_transport", "--version", str(version), stdin=io.StringIO("00" * 16)
        )
    with pytest.raises(CommandError, match="factory"):
        call_command("card_keys_import_transport", "--version", "0", stdin=io.StringIO("00" * 16))
