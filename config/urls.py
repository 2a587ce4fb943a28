from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("console/", include("console.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", RedirectView.as_view(pattern_name="console:home", permanent=False)),
    path("", include("ops.urls")),
    path("", include("pki.urls")),
    path("", include("api.contactless_urls")),
]
