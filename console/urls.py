from django.contrib.auth import views as auth_views
from django.urls import path

from console import lifecycle_pages
from console import migration
from console.views import AuditView, HomeView, LoginView

app_name = "console"

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="console:login"), name="logout"),
    path("audit/", AuditView.as_view(), name="audit"),
    # --- after issuance (issue 15) ---
    path(
        "cards/report-loss/",
        lifecycle_pages.CardReportLossView.as_view(),
        name="card-report-loss",
    ),
    path("renewals/", lifecycle_pages.RenewalCampaignView.as_view(), name="renewal-campaign"),
    path(
        "bulk-revocations/",
        lifecycle_pages.BulkRevocationsView.as_view(),
        name="bulk-revocations",
    ),
    # --- end after issuance ---
    # CPS3 → CPS4 migration
    path("migration/", migration.MigrationDashboardView.as_view(), name="migration"),
    path(
        "migration/exceptions/",
        migration.MigrationExceptionsView.as_view(),
        name="migration-exceptions",
    ),
    path(
        "migration/exceptions.csv",
        migration.MigrationExceptionsCsvView.as_view(),
        name="migration-exceptions-csv",
    ),
    path("migration/waves/<int:wave_id>/", migration.WaveView.as_view(), name="migration-wave"),
]
