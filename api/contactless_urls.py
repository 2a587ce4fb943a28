"""Public, unauthenticated contactless URLs (DESIGN.md §8): the status service and the signed
deny list. Stable addresses a relying party configures once."""

from django.urls import path

from api.views import contactless

app_name = "contactless"

urlpatterns = [
    path(
        "contactless/status",
        contactless.ContactlessStatusRootApi.as_view(),
        name="status",
    ),
    path("contactless/deny-list/full.p7m", contactless.deny_list_full_latest, name="full"),
    path(
        "contactless/deny-list/full-<int:version>.p7m",
        contactless.deny_list_full,
        name="full-version",
    ),
    path(
        "contactless/deny-list/delta-<int:version>.p7m",
        contactless.deny_list_delta,
        name="delta",
    ),
]
