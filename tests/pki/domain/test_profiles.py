from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pki.domain import names
from pki.domain.errors import ProfileViolation
from pki.domain.profiles import PROFILES, profile_get, validate_profiles, validate_request
from tests.pki.keys_pool import rsa_key

LATER = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def test_profile_table_is_consistent() -> None:
    validate_profiles()


def test_unknown_profile_names_the_rule() -> None:
    with pytest.raises(ProfileViolation, match="unknown profile 'nope'") as err:
        profile_get("nope")
    assert err.value.rule == "profile.known"


def test_card_profile_refuses_other_key_sizes(holder: names.Holder) -> None:
    with pytest.raises(ProfileViolation) as err:
        validate_request(
            PROFILES["cps_auth"],
            public_key=rsa_key("small", 1024).public_key(),
            holder=holder,
            not_after=LATER,
            issuer_not_after=None,
        )
    assert err.value.rule == "key.size"


def test_card_profile_refuses_ec_keys(holder: names.Holder) -> None:
    with pytest.raises(ProfileViolation) as err:
        validate_request(
            PROFILES["cps_auth"],
            public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
            holder=holder,
            not_after=LATER,
            issuer_not_after=None,
        )
    assert err.value.rule == "key.type"


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"surname": ""}, "holder.surname"),
        ({"given_name": "G" * 65}, "holder.given_name.max_length"),
        ({"national_id": "x"}, "holder.national_id.format"),
        ({"email": None}, "holder.email"),
    ],
)
def test_holder_rules_are_named(holder: names.Holder, change: dict[str, object], rule: str) -> None:
    with pytest.raises(ProfileViolation) as err:
        validate_request(
            PROFILES["cps_sign"],
            public_key=rsa_key("holder").public_key(),
            holder=dataclasses.replace(holder, **change),  # type: ignore[arg-type]
            not_after=LATER,
            issuer_not_after=None,
        )
    assert err.value.rule == rule


def test_certificate_cannot_outlive_its_issuer(holder: names.Holder) -> None:
    with pytest.raises(ProfileViolation) as err:
        validate_request(
            PROFILES["cps_auth"],
            public_key=rsa_key("holder").public_key(),
            holder=holder,
            not_after=LATER,
            issuer_not_after=LATER - dt.timedelta(days=1),
        )
    assert err.value.rule == "validity.within_issuer"


def test_missing_holder_is_refused() -> None:
    with pytest.raises(ProfileViolation) as err:
        validate_request(
            PROFILES["cps_auth"],
            public_key=rsa_key("holder").public_key(),
            holder=None,
            not_after=LATER,
            issuer_not_after=None,
        )
    assert err.value.rule == "holder.required"
