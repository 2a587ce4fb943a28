"""The registry's paths, spliced into the ``v1`` list of ``api.urls``."""

from django.urls import path

from api.views.cms import after_issuance, cards, holders, mailers, products, requests, stock

cms_v1 = [
    path("holders", holders.HolderListApi.as_view(), name="holder-list"),
    path("holders/create", holders.HolderCreateApi.as_view(), name="holder-create"),
    path("holders/import", holders.HolderImportApi.as_view(), name="holder-import"),
    path("holders/<uuid:holder_id>", holders.HolderDetailApi.as_view(), name="holder-detail"),
    path(
        "holders/<uuid:holder_id>/update", holders.HolderUpdateApi.as_view(), name="holder-update"
    ),
    path("products", products.ProductListApi.as_view(), name="product-list"),
    path("products/<int:product_id>", products.ProductDetailApi.as_view(), name="product-detail"),
    path("stock/pools", stock.PoolListApi.as_view(), name="stock-pool-list"),
    path("stock/pools/create", stock.PoolCreateApi.as_view(), name="stock-pool-create"),
    path("stock/batches", stock.BatchListApi.as_view(), name="stock-batch-list"),
    path("stock/batches/register", stock.BatchRegisterApi.as_view(), name="stock-batch-register"),
    path("stock/assign-pool", stock.StockAssignPoolApi.as_view(), name="stock-assign-pool"),
    path("stock/counts", stock.StockCountsApi.as_view(), name="stock-counts"),
    path("cards", cards.CardListApi.as_view(), name="card-list"),
    path("cards/<uuid:card_id>", cards.CardDetailApi.as_view(), name="card-detail"),
    path(
        "cards/<uuid:card_id>/transition", cards.CardTransitionApi.as_view(), name="card-transition"
    ),
    path("card-approvals", cards.CardApprovalListApi.as_view(), name="card-approval-list"),
    path(
        "card-approvals/<int:approval_id>/approve",
        cards.CardApprovalApproveApi.as_view(),
        name="card-approval-approve",
    ),
    path(
        "card-approvals/<int:approval_id>/reject",
        cards.CardApprovalRejectApi.as_view(),
        name="card-approval-reject",
    ),
    # --- after issuance (issue 15) ---
    path(
        "cards/<uuid:card_id>/report-loss",
        after_issuance.CardReportLossApi.as_view(),
        name="card-report-loss",
    ),
    path(
        "requests/<uuid:request_id>/temporary-card",
        after_issuance.RequestTemporaryCardApi.as_view(),
        name="request-temporary-card",
    ),
    path("renewals/open", after_issuance.RenewalOpenListApi.as_view(), name="renewal-open-list"),
    path(
        "renewals/<uuid:renewal_id>/abandon",
        after_issuance.RenewalAbandonApi.as_view(),
        name="renewal-abandon",
    ),
    path("renewals/campaign", after_issuance.RenewalCampaignApi.as_view(), name="renewal-campaign"),
    path(
        "renewals/invitations",
        after_issuance.RenewalInvitationListApi.as_view(),
        name="renewal-invitation-list",
    ),
    path(
        "bulk-revocations/preview",
        after_issuance.BulkRevocationPreviewApi.as_view(),
        name="bulk-revocation-preview",
    ),
    path(
        "bulk-revocations/launch",
        after_issuance.BulkRevocationLaunchApi.as_view(),
        name="bulk-revocation-launch",
    ),
    path(
        "bulk-revocations",
        after_issuance.BulkRevocationListApi.as_view(),
        name="bulk-revocation-list",
    ),
    path(
        "bulk-revocations/<int:bulk_id>",
        after_issuance.BulkRevocationDetailApi.as_view(),
        name="bulk-revocation-detail",
    ),
    # --- end after issuance ---
    path("contactless/deny-list", cards.DenyListApi.as_view(), name="contactless-deny-list"),
    path("requests", requests.RequestListApi.as_view(), name="request-list"),
    path("requests/create", requests.RequestCreateApi.as_view(), name="request-create"),
    path("requests/<uuid:request_id>", requests.RequestDetailApi.as_view(), name="request-detail"),
    path(
        "requests/<uuid:request_id>/submit",
        requests.RequestSubmitApi.as_view(),
        name="request-submit",
    ),
    path(
        "requests/<uuid:request_id>/approve",
        requests.RequestApproveApi.as_view(),
        name="request-approve",
    ),
    path(
        "requests/<uuid:request_id>/reject",
        requests.RequestRejectApi.as_view(),
        name="request-reject",
    ),
    path(
        "requests/<uuid:request_id>/queue", requests.RequestQueueApi.as_view(), name="request-queue"
    ),
    path("pin-mailers", mailers.PinMailerListApi.as_view(), name="pin-mailer-list"),
    path(
        "pin-mailers/<uuid:mailer_id>/print",
        mailers.PinMailerPrintApi.as_view(),
        name="pin-mailer-print",
    ),
    path(
        "pin-mailers/<uuid:mailer_id>/confirm",
        mailers.PinMailerConfirmApi.as_view(),
        name="pin-mailer-confirm",
    ),
    path("print-runs", mailers.PrintRunListApi.as_view(), name="print-run-list"),
    path("print-runs/create", mailers.PrintRunCreateApi.as_view(), name="print-run-create"),
    path("print-runs/<int:run_id>", mailers.PrintRunDetailApi.as_view(), name="print-run-detail"),
    path(
        "print-runs/<int:run_id>/print", mailers.PrintRunPrintApi.as_view(), name="print-run-print"
    ),
    path(
        "print-runs/<int:run_id>/reconcile",
        mailers.PrintRunReconcileApi.as_view(),
        name="print-run-reconcile",
    ),
]
