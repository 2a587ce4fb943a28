from django.contrib.auth import views as auth_views
from django.urls import path

from console import lifecycle_pages, migration
from console.helpdesk import HelpdeskCardView, HelpdeskNewCodesView, HelpdeskSearchView
from console.pages.accounts import (
    AccountCreateView,
    AccountListView,
    AccountPasswordView,
    AccountRoleView,
    AccountView,
)
from console.pages.cards import CardApprovalView, CardListView, CardTransitionView, CardView
from console.pages.holders import (
    HolderCreateView,
    HolderEditView,
    HolderImportRejectedView,
    HolderImportStatusView,
    HolderImportView,
    HolderListView,
    HolderView,
    RequestFileView,
)
from console.pages.mailers import MailerConfirmView, MailerPrintView, MailerQueueView
from console.pages.pki import PkiPublishView, PkiView
from console.pages.requests import RequestDecisionView, RequestListView, RequestView
from console.pages.stations import (
    StationCreateView,
    StationDisableView,
    StationListView,
    StationView,
)
from console.pages.stock import BatchRegisterView, PoolThresholdView, StockView
from console.relying_parties import ContactlessView
from console.views import AuditVerifyView, AuditView, HomeView, LoginView

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
    path("renewals/open/", lifecycle_pages.RenewalsOpenView.as_view(), name="renewals-open"),
    path(
        "renewals/<uuid:renewal_id>/abandon/",
        lifecycle_pages.RenewalAbandonView.as_view(),
        name="renewal-abandon",
    ),
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
    path("audit/verify/", AuditVerifyView.as_view(), name="audit_verify"),
    path("holders/", HolderListView.as_view(), name="holders"),
    path("holders/new/", HolderCreateView.as_view(), name="holder_create"),
    path("holders/import/", HolderImportView.as_view(), name="holder_import"),
    path(
        "holders/import/<slug:import_id>/",
        HolderImportStatusView.as_view(),
        name="holder_import_status",
    ),
    path(
        "holders/import/<slug:import_id>/rejected.csv",
        HolderImportRejectedView.as_view(),
        name="holder_import_rejected",
    ),
    path("holders/<uuid:holder_id>/", HolderView.as_view(), name="holder"),
    path("holders/<uuid:holder_id>/edit/", HolderEditView.as_view(), name="holder_edit"),
    path("holders/<uuid:holder_id>/request/", RequestFileView.as_view(), name="request_file"),
    path("cards/", CardListView.as_view(), name="cards"),
    path("cards/<uuid:card_id>/", CardView.as_view(), name="card"),
    path(
        "cards/<uuid:card_id>/transition/<slug:transition>/",
        CardTransitionView.as_view(),
        name="card_transition",
    ),
    path("cards/approvals/<int:approval_id>/", CardApprovalView.as_view(), name="card_approval"),
    path("requests/", RequestListView.as_view(), name="requests"),
    path("requests/<uuid:request_id>/", RequestView.as_view(), name="request"),
    path(
        "requests/<uuid:request_id>/decision/",
        RequestDecisionView.as_view(),
        name="request_decision",
    ),
    path("mailers/", MailerQueueView.as_view(), name="mailers"),
    path("mailers/<uuid:mailer_id>/print/", MailerPrintView.as_view(), name="mailer_print"),
    path("mailers/<uuid:mailer_id>/confirm/", MailerConfirmView.as_view(), name="mailer_confirm"),
    path("stock/", StockView.as_view(), name="stock"),
    path("stock/batches/", BatchRegisterView.as_view(), name="batch_register"),
    path(
        "stock/pools/<int:pool_id>/threshold/", PoolThresholdView.as_view(), name="pool_threshold"
    ),
    path("stations/", StationListView.as_view(), name="stations"),
    path("stations/new/", StationCreateView.as_view(), name="station_create"),
    path("stations/<uuid:station_id>/", StationView.as_view(), name="station"),
    path(
        "stations/<uuid:station_id>/disable/", StationDisableView.as_view(), name="station_disable"
    ),
    path("accounts/", AccountListView.as_view(), name="accounts"),
    path("accounts/new/", AccountCreateView.as_view(), name="account_create"),
    path("accounts/<int:user_id>/", AccountView.as_view(), name="account"),
    path("accounts/<int:user_id>/roles/", AccountRoleView.as_view(), name="account_role"),
    path(
        "accounts/<int:user_id>/password/", AccountPasswordView.as_view(), name="account_password"
    ),
    path("pki/", PkiView.as_view(), name="pki"),
    path("pki/publish/", PkiPublishView.as_view(), name="pki_publish"),
    # --- contactless relying parties and the signed deny list (issue 16)
    path("contactless/", ContactlessView.as_view(), name="contactless"),
    # helpdesk (issue 14)
    path("helpdesk/", HelpdeskSearchView.as_view(), name="helpdesk"),
    path("helpdesk/cards/<uuid:card_id>/", HelpdeskCardView.as_view(), name="helpdesk-card"),
    path(
        "helpdesk/cards/<uuid:card_id>/new-codes/",
        HelpdeskNewCodesView.as_view(),
        name="helpdesk-new-codes",
    ),
]
