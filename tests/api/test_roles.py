"""Every endpoint × every role: a role not declared by the view gets 403, a declared one does not."""

from __future__ import annotations

import pytest

from api.permissions import HasDeclaredRole
from core.roles import Role
from tests.api.endpoints import api_endpoints

ENDPOINTS = api_endpoints()


def test_there_are_endpoints_to_check():
    assert len(ENDPOINTS) >= 3


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_every_view_declares_its_roles_or_says_it_is_public(endpoint):
    roles = getattr(endpoint.view_class, "roles", None)
    public = getattr(endpoint.view_class, "public", False)
    assert public or roles, f"{endpoint.view_class.__name__} declares no roles"
    if not public:
        assert all(isinstance(role, Role) for role in roles)
        assert HasDeclaredRole in endpoint.view_class.permission_classes


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if not getattr(e.view_class, "public", False)], ids=str
)
def test_role_matrix(endpoint, role, api_client_for):
    client = api_client_for(role.value)
    response = getattr(client, endpoint.method)(endpoint.url, data={}, format="json")
    if role in endpoint.view_class.roles:
        # Past the permission check: an answer, a refusal of the empty input, or "no such object".
        assert response.status_code in {200, 201, 400, 404, 409, 415, 422}, response.content
    else:
        assert response.status_code == 403
        assert set(response.json()) == {"message", "extra"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if not getattr(e.view_class, "public", False)], ids=str
)
def test_anonymous_and_roleless_callers_are_refused(endpoint, api_client_for):
    from rest_framework.test import APIClient

    anonymous = getattr(APIClient(), endpoint.method)(endpoint.url, data={}, format="json")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Token"
    roleless = getattr(api_client_for(), endpoint.method)(endpoint.url, data={}, format="json")
    assert roleless.status_code == 403
