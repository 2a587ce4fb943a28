from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from cryptography import x509

from pki.domain import builders, names
from pki.domain.extensions import CardType
from pki.domain.profiles import PROFILES
from tests.pki.keys_pool import rsa_key

NOW = dt.datetime(2025, 9, 1, 12, 0, 0, tzinfo=dt.UTC)
SMALL = frozenset({2048})


def counter_rng() -> Callable[[int], bytes]:
    state = {"n": 0}

    def rng(size: int) -> bytes:
        state["n"] += 1
        return state["n"].to_bytes(size, "big")

    return rng


@pytest.fixture(scope="session")
def hierarchy() -> dict[str, object]:
    root_key = rsa_key("root")
    root_name = names.ca_name(
        common_name="TEST AC RACINE IGC-SANTE FORT",
        organisation="ASIP-SANTE",
        organisation_units=("0002 187512751", "IGC-SANTE TEST"),
    )
    root = builders.build_certificate(
        profile=PROFILES["ca_root"].with_key_sizes(SMALL),
        public_key=root_key.public_key(),
        subject=root_name,
        serial=1,
        now=NOW,
        issuer=None,
        self_signing_key=root_key,
        policies=[builders.PolicySpec("2.5.29.32.0", "http://example.test/PC")],
    )
    root_urls = builders.RevocationUrls(
        crl="http://pki.test/pki/crl/ACR-FO-TEST.crl",
        delta_crl="http://pki.test/pki/crl/ACR-FO-TEST-delta.crl",
        ocsp="http://pki.test/ocsp",
        ca_issuers="http://pki.test/pki/ca/ACR-FO-TEST.cer",
    )
    sub_key = rsa_key("issuing")
    sub = builders.build_certificate(
        profile=PROFILES["ca_issuing"].with_key_sizes(SMALL),
        public_key=sub_key.public_key(),
        subject=names.ca_name(
            common_name="TEST AC IGC-SANTE FORT PERSONNES",
            organisation="ASIP-SANTE",
            organisation_units=("0002 187512751", "IGC-SANTE TEST"),
        ),
        serial=2,
        now=NOW,
        issuer=builders.Issuer(root, root_key, root_urls),
        policies=[builders.PolicySpec("2.5.29.32.0", "http://example.test/PC")],
    )
    urls = builders.RevocationUrls(
        crl="http://pki.test/pki/crl/ACI-FO-PP-TEST.crl",
        delta_crl="http://pki.test/pki/crl/ACI-FO-PP-TEST-delta.crl",
        ocsp="http://pki.test/ocsp",
        ca_issuers="http://pki.test/pki/ca/ACI-FO-PP-TEST.cer",
    )
    return {
        "root": root,
        "root_key": root_key,
        "issuing": builders.Issuer(sub, sub_key, urls),
    }


@pytest.fixture
def holder() -> names.Holder:
    return names.Holder(
        national_id="810002813839",
        surname="DONNAT-GADY",
        given_name="ISABELLE",
        title="Médecin",
        card_serial="2600301752",
        profession_code=10,
        card_type=CardType.CPS,
        email="isabelle.donnat@example.org",
    )


def issued(hierarchy: dict[str, object], holder: names.Holder, profile: str) -> x509.Certificate:
    issuer = hierarchy["issuing"]
    assert isinstance(issuer, builders.Issuer)
    return builders.build_certificate(
        profile=PROFILES[profile],
        public_key=rsa_key("holder").public_key(),
        subject=names.holder_subject(holder),
        serial=builders.random_serial(counter_rng()),
        now=NOW,
        issuer=issuer,
        holder=holder,
        policies=[builders.PolicySpec("1.2.250.1.213.1.7.2.1.1.1.1", "http://example.test/PC")],
    )
