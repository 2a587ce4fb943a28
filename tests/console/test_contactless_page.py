"""The console's contactless page shows the deny list's size and newest version, and the relying
parties (the role matrix of test_pages covers who may open it)."""

from __future__ import annotations

import pytest

from cms.models import DenyListPublication, RelyingParty

pytestmark = pytest.mark.django_db


def test_shows_version_size_and_parties(client, make_user):
    from django.utils import timezone

    now = timezone.now()
    DenyListPublication.objects.create(
        version=7, kind="full", issued_at=now, next_update=now, entry_count=0,
        signer_serial="1", der=b"x", sha256="0" * 64,
    )  # fmt: skip
    RelyingParty.objects.create(name="Parking Nord", public_key_pem="-", contact="ops@example.org")
    client.force_login(make_user("security_officer"))
    page = client.get("/console/contactless/").content.decode()
    assert 'id="deny-version">7<' in page
    assert 'id="deny-count">0<' in page
    assert "Parking Nord" in page
