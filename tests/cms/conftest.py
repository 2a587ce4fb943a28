"""Registry fixtures: products, holders, callers, cards put in a given state, linked certificates."""

from __future__ import annotations

import itertools

import pytest

from cms.callers import Caller
from cms.choices import CardStatus, ProductStatus
from cms.models import Card, CardCertificate, Holder, Product
from tests.pki.conftest import pki_software, software_key_dir  # noqa: F401

_serials = itertools.count(1)

CPS4_DEFINITION = {
    "name": "CPS4",
    "version": "1",
    "key_slots": [{"slot": "auth", "profile": "cps_auth"}, {"slot": "sign", "profile": "cps_sign"}],
    "pin": {"digits": 4, "tries": 3},
    "puk": {"digits": 8},
    "validity_years": 6,
}


@pytest.fixture
def caller_for(make_user):
    """``caller_for("issuance_operator")``: a Caller backed by a real account with those roles."""

    def _caller(*roles: str) -> Caller:
        return Caller.for_user(make_user(*roles))

    return _caller


@pytest.fixture
def system() -> Caller:
    return Caller.for_system("tests")


@pytest.fixture
def cps4(db) -> Product:
    return Product.objects.create(
        name="CPS4",
        version="1",
        status=ProductStatus.ISSUED,
        validity_years=6,
        definition=CPS4_DEFINITION,
        definition_sha256="0" * 64,
    )


@pytest.fixture
def cps3(db) -> Product:
    return Product.objects.create(
        name="CPS3",
        version="1",
        status=ProductStatus.LEGACY,
        validity_years=3,
        definition={"name": "CPS3"},
        definition_sha256="1" * 64,
    )


def holder_make(national_id: str = "810002813839", **fields: str) -> Holder:
    values = {
        "national_id": national_id,
        "last_name": "MARTIN",
        "first_name": "Claire",
        "profession": "10",
        "card_type": "CPS",
        "postal_code": "75011",
        "departement": "75",
    }
    values.update(fields)
    return Holder.objects.create(**values)


@pytest.fixture
def holder(db) -> Holder:
    return holder_make()


def card_make(
    product: Product, status: CardStatus = CardStatus.IN_STOCK, holder: Holder | None = None
) -> Card:
    n = next(_serials)
    needs_holder = status not in (CardStatus.IN_STOCK, CardStatus.SPOILED, CardStatus.DESTROYED)
    if needs_holder and holder is None:
        holder = holder_make(national_id=_rpps(n), last_name=f"HOLDER{n}")
    chip_serial = f"8025000001{n:010d}"  # a CPS EF.SN.ICC: the card number is the chip serial
    return Card.objects.create(
        chip_serial=chip_serial,
        desfire_uid=f"04{n:012X}",
        product=product,
        status=status,
        holder=holder if needs_holder or holder else None,
        card_type=holder.card_type if holder else "",
        card_number=chip_serial if holder else None,
    )


def _rpps(n: int) -> str:
    from cms.identifiers import luhn_digit

    body = f"9{n:09d}"
    return f"8{body}{luhn_digit(body)}"


@pytest.fixture(scope="session")
def holder_key():
    """One RSA key certified again and again: key generation is the slow part, not issuance."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def authority(pki_software):  # noqa: F811 - the fixture imported above
    """The issuing CA of the test hierarchy (real keys, real certificates)."""
    from pki.models import CertificateAuthority

    return CertificateAuthority.objects.get(short_name="ACI-FO-PP-TEST")


@pytest.fixture
def link_certificates(authority, holder_key):
    """Give a card its two certificates (auth, sign), issued by the PKI, in a given status."""
    from core.actors import Actor
    from pki import services
    from pki.domain.names import Holder as CertificateHolder
    from pki.domain.reasons import RevocationReason
    from pki.models import Certificate

    actor = Actor.system("tests")

    def _link(card: Card, status: str = "valid") -> list[Certificate]:
        n = next(_serials)
        holder = CertificateHolder(
            national_id=f"8100{n:08d}",
            surname="DUPONT",
            given_name="JEAN",
            title="Médecin",
            card_serial=f"{n:010d}",
            profession_code=10,
            email=f"jean.dupont{n}@example.org",
        )
        certs = []
        for slot in ("auth", "sign"):
            cert = services.certificate_issue(
                authority=authority.short_name,
                profile=f"cps_{slot}",
                actor=actor,
                public_key=holder_key.public_key(),
                holder=holder,
                on_hold=status == "on_hold",
            )
            if status == "revoked":
                cert = services.certificate_revoke(
                    certificate_id=cert.pk, reason=RevocationReason.KEY_COMPROMISE, actor=actor
                )
            CardCertificate.objects.create(card=card, slot=slot, certificate=cert)
            certs.append(cert)
        return certs

    return _link
