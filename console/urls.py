from django.contrib.auth import views as auth_views
from django.urls import path

from console import migration
from console.views import AuditView, HomeView, LoginView

app_name = "console"

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="console:login"), name="logout"),
    path("audit/", AuditView.as_view(), name="audit"),
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
