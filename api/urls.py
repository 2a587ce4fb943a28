from django.urls import include, path, re_path

from api.exceptions import api_not_found
from api.views.audit import AuditEventListApi
from api.views.auth import TokenCreateApi, TokenListApi, TokenRevokeApi
from api.views.cms.urls import cms_v1
from api.views.contactless import ContactlessStatusApi
from api.views.dual_control import dual_control_v1
from api.views.helpdesk import helpdesk_v1
from api.views.me import MeApi
from api.views.migration import migration_v1
from api.views.relying_parties import relying_parties_v1
from api.views.schema import DocsApi, SchemaApi
from api.views.stations import stations_v1

# Django tries the patterns in order: the stations' relay (nine requests a card, issue 12) comes
# first, which no other pattern overlaps (each starts with its own literal segment), so a station
# round trip matches a handful of patterns instead of some sixty. The schema sorts paths anyway.
v1 = [
    *stations_v1,
    path("auth/token", TokenCreateApi.as_view(), name="auth-token"),
    path("auth/tokens", TokenListApi.as_view(), name="auth-token-list"),
    path("auth/tokens/<int:token_id>/revoke", TokenRevokeApi.as_view(), name="auth-token-revoke"),
    path("me", MeApi.as_view(), name="me"),
    path("audit/events", AuditEventListApi.as_view(), name="audit-event-list"),
    *cms_v1,
    *dual_control_v1,
    *migration_v1,
    *relying_parties_v1,
    path("contactless/status", ContactlessStatusApi.as_view(), name="contactless-status"),
    *helpdesk_v1,
]


urlpatterns = [
    path("schema/", SchemaApi.as_view(), name="schema"),
    path("docs/", DocsApi.as_view(url_name="schema"), name="docs"),
    path("v1/", include(v1)),
    re_path(r"^[\s\S]*$", api_not_found),  # not ".": a path with a newline (%0A) too
]
