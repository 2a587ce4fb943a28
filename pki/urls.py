"""Public, unauthenticated PKI URLs (DESIGN.md §8): the addresses written into certificates."""

from django.urls import path, re_path

from pki import views

app_name = "pki"

urlpatterns = [
    path("pki/ca/<str:short_name>.cer", views.ca_certificate, name="ca-certificate"),
    re_path(
        r"^pki/crl/(?P<short_name>[A-Za-z0-9_.-]+?)-delta\.crl$", views.crl_delta, name="crl-delta"
    ),
    re_path(r"^pki/crl/(?P<short_name>[A-Za-z0-9_.-]+?)\.crl$", views.crl_full, name="crl-full"),
    path("pki/audit-anchor.json", views.audit_anchor, name="audit-anchor"),
    path("ocsp", views.ocsp_post, name="ocsp"),
    # base64 may contain '/' and '+'; the whole rest of the path is the request (RFC 6960 A.1)
    re_path(r"^ocsp/(?P<encoded>.+)$", views.ocsp_get, name="ocsp-get"),
]
