"""Registry fixtures: products, holders, callers, cards put in a given state, linked certificates."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from decimal import Decimal

import pytest
from django.utils import timezone

from cms.callers import Caller
from cms.choices import CardStatus, ProductStatus
from cms.models import Card, CardCertificate, Holder, Product

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
    return Card.objects.create(
        chip_serial=f"{n:016X}",
        desfire_uid=f"04{n:012X}",
        product=product,
        status=status,
        holder=holder if needs_holder or holder else None,
        card_type=holder.card_type if holder else "",
        card_number=_card_number(n) if holder else None,
    )


def _rpps(n: int) -> str:
    from cms.identifiers import luhn_valid

    body = f"9{n:09d}"
    check = next(d for d in "0123456789" if luhn_valid(body + d))
    return f"8{body}{check}"


def _card_number(n: int) -> str:
    from cms.services.cards import card_number_format

    return card_number_format(900_000_000 + n)


@pytest.fixture
def authority(db):
    from pki.models import CertificateAuthority

    now = timezone.now()
    return CertificateAuthority.objects.create(
        short_name="test-ca",
        common_name="Test CA",
        kind="root",
        key_backend="software",
        key_handle="none",
        certificate_der=b"\x30\x00",
        issuer_name_hash="0" * 40,
        issuer_key_hash="1" * 40,
        not_before=now,
        not_after=now + dt.timedelta(days=3650),
    )


@pytest.fixture
def link_certificates(authority):
    """Give a card its two certificate rows (auth, sign) in a given pki status."""
    from pki.models import Certificate

    def _link(card: Card, status: str = "valid") -> list[Certificate]:
        now = timezone.now()
        certs = []
        for slot in ("auth", "sign"):
            n = next(_serials)
            der = f"cert-{n}".encode()
            cert = Certificate.objects.create(
                issuer=authority,
                serial=Decimal(n),
                profile=f"cps_{slot}",
                status=status,
                subject=f"CN=card {card.pk} {slot}",
                not_before=now,
                not_after=now + dt.timedelta(days=365),
                der=der,
                fingerprint_sha256=hashlib.sha256(der).hexdigest(),
                hold_since=now if status == "on_hold" else None,
                status_changed_at=now,
            )
            CardCertificate.objects.create(card=card, slot=slot, certificate=cert)
            certs.append(cert)
        return certs

    return _link
