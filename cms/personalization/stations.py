"""Stations: creation by a security officer, one-time enrollment codes, enrollment, disabling.

A station's credential is an API token of its own machine account (role ``station``), and
optionally a client certificate (profile ``station_client``) issued from a CSR the station made.
Disabling a station deactivates its account and revokes its tokens, so its next call gets 401.
Its certificate goes through ``cms.effects`` (the one way to the PKI); the certificate in force is
revoked in the same transaction when the station enrolls again
(superseded) or is disabled (cessation of operation).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from cms import effects
from cms.callers import Caller
from cms.models import SitePool, Station, StationEnrollmentCode
from cms.personalization.choices import StationStatus
from cms.personalization.jobs import jobs_release_for_station
from core.actors import Actor
from core.audit import audit_event_create
from core.dual_control import ActKind, act_request, register
from core.errors import BadInput, Conflict, Forbidden, NotFound
from core.models import ApiToken, DualControlAct
from core.roles import Role
from core.rows import joined_read
from core.tokens import api_token_create, api_token_revoke
from pki.domain.reasons import RevocationReason
from pki.selectors import authority_list

ENROLLMENT_CODE_LIFETIME = dt.timedelta(hours=24)
STATION_PROFILE = "station_client"


def _digest(code: str) -> str:
    normalized = code.strip().replace("-", "").upper()
    return hashlib.sha256(normalized.encode("ascii", "replace")).hexdigest()


def _new_code() -> str:
    """25 characters of Crockford-like base32 in groups of five: ~125 bits, easy to type."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    raw = "".join(secrets.choice(alphabet) for _ in range(25))
    return "-".join(raw[i : i + 5] for i in range(0, 25, 5))


def _require_officer(caller: Caller) -> None:
    if not (caller.system or Role.SECURITY_OFFICER in caller.roles):
        raise Forbidden("Only security officers manage personalization stations.")


def _audit(station: Station, actor: Actor, action: str, **details: object) -> None:
    audit_event_create(
        actor=actor,
        action=f"station.{action}",
        object_type="station",
        object_id=str(station.pk),
        details={"name": station.name, "site": station.site.code, **details},
    )


@dataclass(frozen=True)
class EnrollmentCode:
    station: Station
    code: str
    expires_at: dt.datetime
    approval_id: int | None = None  # the dual-control act a second officer approves, if any

    def __repr__(self) -> str:
        return f"EnrollmentCode(station={self.station.pk}, code='****')"


ENROLLMENT_ACT = "station.enrollment"


def _enrollment_summary(params: Mapping[str, Any]) -> str:
    if not isinstance(params.get("code_id"), int) or not isinstance(params.get("station"), str):
        raise BadInput("A station enrollment act names its code and station.")
    return f"Enroll station {params['station']}"


def _enrollment_approve(
    act: DualControlAct, requester: Actor, approver: Actor
) -> Mapping[str, Any]:
    """The second officer's approval: the code the first one holds now enrolls the station."""
    record = (
        StationEnrollmentCode.objects.select_for_update()
        .select_related("station", "station__site")
        .filter(pk=act.params["code_id"], approval=act)
        .first()
    )
    if record is None or record.used_at is not None:
        raise Conflict("This enrollment code was replaced or used; ask for a new one.")
    if record.expires_at <= timezone.now():
        raise Conflict("This enrollment code has expired; ask for a new one.")
    record.approved_at = timezone.now()
    record.save(update_fields=["approved_at"])
    _audit(record.station, approver, "code_approve", requested_by=requester.label, act=act.pk)
    return {"station_id": str(record.station_id)}


register(
    ActKind(
        name=ENROLLMENT_ACT,
        role=Role.SECURITY_OFFICER,
        label="Station enrollment",
        handler=_enrollment_approve,
        validate=_enrollment_summary,
    )
)


def _code_create(station: Station, lifetime: dt.timedelta, caller: Caller) -> EnrollmentCode:
    """A fresh one-time code (the old unused one dropped). Asked for by a person, it waits for
    a second security officer (issue 11 §4); a system caller's works at once."""
    StationEnrollmentCode.objects.filter(station=station, used_at__isnull=True).delete()
    code = _new_code()
    now = timezone.now()
    expires = now + lifetime
    record = StationEnrollmentCode.objects.create(
        station=station,
        digest=_digest(code),
        expires_at=expires,
        approved_at=now if caller.system else None,
    )
    if caller.system:
        return EnrollmentCode(station, code, expires)
    requester = (
        User.objects.filter(pk=caller.user_id).first() if caller.user_id is not None else None
    )
    if requester is None:
        raise Forbidden("A station enrollment is asked for by a named person.")
    act = act_request(
        kind=ENROLLMENT_ACT,
        params={"code_id": record.pk, "station": f"{station.site.code}/{station.name}"},
        user=requester,
        reason=f"enrollment code for station {station.name} at {station.site.code}",
    )
    record.approval = act
    record.save(update_fields=["approval"])
    return EnrollmentCode(station, code, expires, approval_id=act.pk)


@transaction.atomic
def station_create(
    *,
    site_code: str,
    name: str,
    caller: Caller,
    lifetime: dt.timedelta = ENROLLMENT_CODE_LIFETIME,
) -> EnrollmentCode:
    """A new station at a site, with its one-time enrollment code (shown here only)."""
    _require_officer(caller)
    name = name.strip()
    if not name or len(name) > 64:
        raise BadInput("A station name is 1 to 64 characters.")
    site = SitePool.objects.filter(code=site_code).first()
    if site is None:
        raise NotFound(f"No site pool {site_code!r}; create it first (stock pools).")
    if Station.objects.filter(site=site, name=name).exists():
        raise Conflict(f"Site {site_code} already has a station called {name!r}.")
    station = Station.objects.create(site=site, name=name)
    issued = _code_create(station, lifetime, caller)
    _audit(station, caller.actor, "create", code_expires_at=issued.expires_at.isoformat())
    return issued


@transaction.atomic
def station_code_renew(
    *, station_id: UUID, caller: Caller, lifetime: dt.timedelta = ENROLLMENT_CODE_LIFETIME
) -> EnrollmentCode:
    """A fresh enrollment code (the old unused one is dropped); re-enrolling replaces the
    station's token."""
    _require_officer(caller)
    station = Station.objects.select_for_update().filter(pk=station_id).first()
    if station is None:
        raise NotFound(f"No station {station_id}.")
    if station.status == StationStatus.DISABLED:
        raise Conflict("The station is disabled; a disabled station is not enrolled again.")
    issued = _code_create(station, lifetime, caller)
    _audit(station, caller.actor, "code_renew", code_expires_at=issued.expires_at.isoformat())
    return issued


@dataclass(frozen=True)
class Enrollment:
    station: Station
    token: str
    certificate_pem: str | None

    def __repr__(self) -> str:
        return f"Enrollment(station={self.station.pk}, token='****')"


def _station_authority() -> str:
    for ca in authority_list():
        if STATION_PROFILE in (ca.profiles or []):
            return str(ca.short_name)
    raise Conflict("No certificate authority issues the station_client profile; run pki_init.")


def _certificate_revoke(station: Station, actor: Actor, reason: RevocationReason) -> str:
    """Revoke the station certificate in force (if any, if still valid); returns its serial
    (hex) or "" when there was nothing to revoke. Runs in the caller's transaction."""
    if station.certificate_id is None:
        return ""
    certificate = station.certificate
    assert certificate is not None
    serial = format(int(certificate.serial), "X")
    effects.station_certificate_revoke(certificate=certificate, reason=reason, actor=actor)
    station.certificate = None
    station.certificate_serial = ""
    return serial


@transaction.atomic
def station_enroll(*, code: str, csr_pem: bytes | None = None) -> Enrollment:
    """Exchange a one-time code for the station credential (token, and a certificate if a CSR
    is given). A used, expired or unknown code is refused the same way."""
    record = (
        StationEnrollmentCode.objects.select_for_update()
        .select_related("station", "station__site")
        .filter(digest=_digest(code))
        .first()
    )
    now = timezone.now()
    if record is None or record.used_at is not None or record.expires_at <= now:
        raise Forbidden("This enrollment code is unknown, used or expired; ask for a new one.")
    if record.approved_at is None:
        raise Forbidden(
            "This enrollment code waits for a second security officer's approval "
            f"(dual-control act #{record.approval_id})."
        )
    station = (
        Station.objects.select_for_update(of=("self",))
        .select_related("certificate")
        .get(pk=record.station_id)
    )
    if station.status == StationStatus.DISABLED:
        raise Forbidden("This station is disabled.")
    record.used_at = now
    record.save(update_fields=["used_at"])
    account = station.account
    if account is None:
        account = User.objects.create_user(username=f"station-{station.pk}", password=None)
        account.groups.add(Group.objects.get_or_create(name=Role.STATION.value)[0])
        station.account = account
    actor = Actor(kind="station", id=str(account.pk), label=account.username)
    for token in ApiToken.objects.filter(user=account, revoked_at__isnull=True):
        api_token_revoke(token_id=token.pk, actor=actor)  # re-enrollment replaces the credential
    _, clear = api_token_create(user=account, actor=actor, label=f"station {station.name}")
    # The previous credential is replaced as a whole: its certificate too, with or without a new
    # one (a station enrolled again without --certificate keeps no certificate).
    superseded = _certificate_revoke(station, actor, RevocationReason.SUPERSEDED)
    certificate_pem = None
    if csr_pem is not None:
        cert = effects.station_certificate_issue(
            authority=_station_authority(),
            profile=STATION_PROFILE,
            csr=csr_pem,
            common_name=f"{station.site.code}-{station.name}"[:64],
            actor=actor,
        )
        certificate_pem = (
            x509.load_der_x509_certificate(bytes(cert.der)).public_bytes(Encoding.PEM).decode()
        )
        station.certificate_serial = format(int(cert.serial), "X")
        station.certificate = cert
    station.status = StationStatus.ACTIVE
    station.enrolled_at = now
    station.save()
    _audit(
        station,
        actor,
        "enroll",
        certificate=station.certificate_serial,
        certificate_revoked=superseded,
    )
    return Enrollment(station, clear, certificate_pem)


@transaction.atomic
def station_disable(*, station_id: UUID, caller: Caller, note: str = "") -> Station:
    """Refuse the station from its next call on: account deactivated, tokens revoked, its
    claimed jobs put back in the queue."""
    _require_officer(caller)
    station = (
        Station.objects.select_for_update(of=("self",))
        .select_related("certificate")
        .filter(pk=station_id)
        .first()
    )
    if station is None:
        raise NotFound(f"No station {station_id}.")
    if station.status == StationStatus.DISABLED:
        return station
    revoked = _certificate_revoke(station, caller.actor, RevocationReason.CESSATION_OF_OPERATION)
    station.status = StationStatus.DISABLED
    station.disabled_at = timezone.now()
    station.save(update_fields=["status", "disabled_at", "certificate", "certificate_serial"])
    if station.account_id is not None:
        User.objects.filter(pk=station.account_id).update(is_active=False)
        for token in ApiToken.objects.filter(user_id=station.account_id, revoked_at__isnull=True):
            api_token_revoke(token_id=token.pk, actor=caller.actor)
    released = jobs_release_for_station(station=station, reason="station disabled")
    _audit(
        station,
        caller.actor,
        "disable",
        note=note[:200],
        jobs_released=released,
        certificate_revoked=revoked,
    )
    return station


def station_list() -> QuerySet[Station]:
    """Every station with its site, by site and name."""
    return Station.objects.select_related("site").order_by("site__code", "name")


def station_for_account(user: User) -> Station:
    """The enrolled, active station behind a machine account (404 if it is none)."""
    # Once per station request, no join (the site id is enough), the statement built once
    # (core.rows: the ORM's get() cost more CPU than the query).
    station = joined_read(Station, (), key="account").get(user.pk)
    if not isinstance(station, Station):
        raise NotFound("This account is not an enrolled personalization station.")
    return station_check(station)


def station_check(station: Station) -> Station:
    """403 unless the station is active (a disabled station's token is revoked as well)."""
    if station.status != StationStatus.ACTIVE:
        raise Forbidden("This station is disabled.")
    return station


def station_touch(station: Station) -> None:
    now = timezone.now()
    if station.last_seen_at is None or (now - station.last_seen_at).total_seconds() > 30:
        Station.objects.filter(pk=station.pk).update(last_seen_at=now)
