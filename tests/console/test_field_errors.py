"""A refused form says why to a screen reader: each refused field is ``aria-invalid`` and its
``aria-describedby`` names its help text and its error messages, which exist on the page."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _input(html: str, name: str) -> str:
    found = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert found is not None, html
    return found.group(0)


def _described_by(tag: str) -> list[str]:
    found = re.search(r'aria-describedby="([^"]+)"', tag)
    return found.group(1).split() if found else []


def test_a_refused_field_is_described_by_its_errors(client, make_user):
    client.force_login(make_user("issuance_operator"))
    response = client.post(reverse("console:holder_create"), {"national_id": "810002813839"})
    assert response.status_code == 400
    html = response.content.decode()
    last_name = _input(html, "last_name")  # required, left empty
    assert 'aria-invalid="true"' in last_name
    ids = _described_by(last_name)
    assert "id_last_name-error-0" in ids
    national_id = _input(html, "national_id")  # accepted: its help only
    assert "aria-invalid" not in national_id
    assert _described_by(national_id) == ["id_national_id_helptext"]
    for element_id in ids + _described_by(national_id):
        assert f'id="{element_id}"' in html  # every id named is on the page
