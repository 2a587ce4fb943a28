"""Settings shared by every variant. Everything that differs between deployments comes from the
environment; ``local`` (embedded default), ``test`` and ``production`` only set what they must."""

from __future__ import annotations

from pathlib import Path

from celery.schedules import crontab

from config.env import env_bool, env_int, env_list, env_str, parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("CMS_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "insecure-embedded-default-key-never-use-in-production")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "core",
    "pki",
    "cms",
    "api",
    "console",
    "ops",
    "cps3",
    "demo",
]

MIDDLEWARE = [
    "ops.metrics.MetricsMiddleware",  # outermost: counts and times every answer
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "api.middleware.JsonErrorMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.sections",
            ],
        },
    },
]

# PostgreSQL is the only engine (DESIGN.md §9). The default is the embedded default's database on
# the local server; `make run` (scripts/ensure-local-db.sh) sets DATABASE_URL to the one it chose.
DATABASES = {
    "default": parse_database_url(
        env_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/cps_cms_local")
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("fr", "Français"), ("en", "English")]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:home"
LOCALE_PATHS = [BASE_DIR / "console" / "locale"]
STATIC_ROOT = VAR_DIR / "static"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.HasDeclaredRole"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "api.exceptions.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON bodies (file uploads declare multipart themselves): form encodings cannot carry the
    # schema's types (null, numbers, lists of more than DATA_UPLOAD_MAX_NUMBER_FIELDS items).
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Proxies in front of the server: the client address for rate limits is taken this many hops
    # back in X-Forwarded-For; 0 ignores the header (no proxy), so clients cannot forge it.
    "NUM_PROXIES": env_int("DJANGO_NUM_PROXIES", 0),
}

# Uploaded files (holder directory extracts, stock batch files) larger than this are refused
# (413) before they are read; the front's client_max_body_size for those paths matches it.
CMS_UPLOAD_MAX_BYTES = env_int("CMS_UPLOAD_MAX_BYTES", 64 * 1024 * 1024)

# Rate-limit counters must be shared by every process: Redis in production (CACHE_URL),
# process memory for the embedded default and tests.
_cache_url = env_str("CACHE_URL", "locmem://")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
        if _cache_url.startswith(("redis://", "rediss://"))
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

SPECTACULAR_SETTINGS = {
    "TITLE": "CPS card management system API",
    "DESCRIPTION": "Registry, PKI and personalization back office for the CPS4 card.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One component per choice set, named after it (fields called "status" or "reason" differ).
    "ENUM_NAME_OVERRIDES": {
        f"{name}Enum": f"{module}.{name}"
        for module, names in {
            "cms.choices": (
                "ApprovalStatus",
                "CardStatus",
                "CardType",
                "DenyReason",
                "HolderStatus",
                "LossReason",
                "ProductStatus",
                "Profession",
                "RequestKind",
                "RequestStatus",
                "RevokeReason",
            ),
            "pki.choices": ("CaKind", "CertificateReason", "CertificateStatus", "CrlKind"),
            "cms.personalization.choices": (
                "JobStatus",
                "SessionMode",
                "SessionStatus",
                "StationStatus",
            ),
            "core.role_names": ("Role",),
        }.items()
        for name in names
    },
}

# --- Celery: queues "default" and "signing" (workers holding CA and card master keys).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = False  # set explicitly by the embedded default and the test settings
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A message delivered but never acknowledged (its worker died, or the broker restarted under it)
# goes back to its queue after this many seconds on Redis (kombu's default is 1 h). Longer than
# any task runs: a redelivered task is re-checked under locks and has its effect once (ADR 0020).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600)}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "audit-chain-check": {"task": "core.tasks.audit_chain_check_task", "schedule": 3600.0},
}

# --- Public URLs written into certificates (CRL distribution points, AIA, OCSP).
PKI_PUBLIC_BASE_URL = env_str("PKI_PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# Logs go to standard error: plain lines for people, JSON lines (LOG_FORMAT=json, the production
# default) for a log collector. Secret values from the environment are masked in every record.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_secrets": {"()": "ops.logging.MaskSecrets"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["mask_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # runserver's request lines, in the same format as everything else
    "loggers": {"django.server": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}

# --- Prometheus metrics at /metrics (ops.views): from these networks, or with the bearer token.
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"])
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

API_PAGE_SIZE_MAX = env_int("API_PAGE_SIZE_MAX", 500)
# API token lifetimes (issue 11 §5): a person's token lasts 30 days by default; a station's a
# year (re-enrollment, with two security officers, replaces it; docs/roles.md).
API_TOKEN_LIFETIME_DAYS = env_int("API_TOKEN_LIFETIME_DAYS", 30)
API_TOKEN_STATION_LIFETIME_DAYS = env_int("API_TOKEN_STATION_LIFETIME_DAYS", 365)
# Seconds a web process remembers who is behind a token (api.auth_cache; any revocation or role
# change ends every entry at once through a version in the shared cache). Only with a cache the
# processes share (CACHE_URL=redis://…); 0 turns it off.
API_AUTH_CACHE_SECONDS = env_int(
    "API_AUTH_CACHE_SECONDS", 30 if _cache_url.startswith(("redis://", "rediss://")) else 0
)

# --- The front (deploy/nginx): the addresses of the proxies whose X-SSL-Client-* headers (the
# client certificate nginx verified) are believed; a header from anyone else is ignored.
CMS_TRUSTED_PROXIES = env_list("CMS_TRUSTED_PROXIES", [])
# A station's token is accepted only with that station's own verified client certificate
# (api.authentication): on in production, off where no TLS front is (embedded default, tests).
STATION_CERTIFICATE_BINDING = env_bool("STATION_CERTIFICATE_BINDING", False)

# --- PKI (owned by the pki app: key backends, hierarchy file, publication schedule)
PKI_KEY_BACKENDS: dict[str, dict[str, object]] = {
    "software": {
        "BACKEND": "pki.keys.software.SoftwareKeyBackend",
        "OPTIONS": {
            "location": env_str("PKI_SOFTWARE_KEY_DIR", str(VAR_DIR / "pki-keys")),
            # the NAME of the variable holding the passphrase, never the passphrase itself
            "passphrase_env": "PKI_KEY_PASSPHRASE",
        },
    },
    "pkcs11": {
        "BACKEND": "pki.keys.pkcs11.Pkcs11KeyBackend",
        "OPTIONS": {
            "module": env_str("PKI_PKCS11_MODULE", "") or None,  # None: standard locations
            "token_label": env_str("PKI_PKCS11_TOKEN_LABEL", "cps-pki"),
            "pin_env": "PKI_PKCS11_PIN",
            "pool_size": env_int("PKI_PKCS11_POOL_SIZE", 2),
        },
    },
}
PKI_DEFAULT_KEY_BACKEND = env_str("PKI_DEFAULT_KEY_BACKEND", "software")
PKI_HIERARCHY_FILE = env_str("PKI_HIERARCHY_FILE", str(BASE_DIR / "pki" / "hierarchy.toml"))
# every PKI task signs: only workers of the signing queue hold CA keys
CELERY_TASK_ROUTES = {"pki.tasks.*": {"queue": "signing"}}
# Publication cadence. The beat task runs every PKI_PUBLISH_TICK_SECONDS and publishes what is
# due, judged from the last publication stored in the database (a restart loses nothing).
PKI_DELTA_CRL_INTERVAL_SECONDS = env_int("PKI_DELTA_CRL_INTERVAL_SECONDS", 3600)
PKI_FULL_CRL_INTERVAL_SECONDS = env_int("PKI_FULL_CRL_INTERVAL_SECONDS", 6 * 3600)
# Pre-signed OCSP answers are signed again when less than this is left before their nextUpdate.
PKI_OCSP_REFRESH_MARGIN_SECONDS = env_int("PKI_OCSP_REFRESH_MARGIN_SECONDS", 6 * 3600)
# Delegated OCSP responder certificates (90 days) are renewed, with a new key, this close to expiry.
PKI_OCSP_RESPONDER_RENEWAL_DAYS = env_int("PKI_OCSP_RESPONDER_RENEWAL_DAYS", 30)
# The web process may sign OCSP answers with the delegated responder key (never a CA key) when no
# pre-signed answer fits: a nonce, a non-SHA-1 CertID, an unknown serial (docs/adr/0002).
PKI_OCSP_LIVE_SIGNING = env_bool("PKI_OCSP_LIVE_SIGNING", True)
# A request nonce costs a fresh signature per unauthenticated request: by default it is ignored
# and the pre-signed answer served (RFC 5019 §2.1). Opt in to echo nonces, at most
# PKI_OCSP_NONCE_RATE live answers a minute per client (beyond: the pre-signed answer). ADR 0019.
PKI_OCSP_NONCE_SIGNING = env_bool("PKI_OCSP_NONCE_SIGNING", False)
PKI_OCSP_NONCE_RATE = env_int("PKI_OCSP_NONCE_RATE", 10)
# The longest an HTTP cache (the nginx front, a relying party) may keep an OCSP answer, whatever
# its nextUpdate: the promised delay before a revocation is seen through a cache.
PKI_OCSP_CACHE_MAX_AGE = env_int("PKI_OCSP_CACHE_MAX_AGE", 60)
# The contactless status signer (signed deny list, ADR 0021): its CA and key renewal.
CONTACTLESS_STATUS_CA = env_str("CONTACTLESS_STATUS_CA", "ACI-FO-TECH-TEST")
PKI_STATUS_SIGNER_RENEWAL_DAYS = env_int("PKI_STATUS_SIGNER_RENEWAL_DAYS", 60)
# The audit chain head is signed with the audit key (key backend below, label "audit-anchor")
# and published every AUDIT_ANCHOR_INTERVAL_SECONDS: a file in AUDIT_ANCHOR_DIR and the URL
# /pki/audit-anchor.json. `manage.py audit_verify --anchor FILE_OR_URL` checks against one.
AUDIT_ANCHOR_KEY_BACKEND = env_str("AUDIT_ANCHOR_KEY_BACKEND", "")  # "": PKI_DEFAULT_KEY_BACKEND
AUDIT_ANCHOR_KEY_LABEL = env_str("AUDIT_ANCHOR_KEY_LABEL", "audit-anchor")
AUDIT_ANCHOR_DIR = env_str("AUDIT_ANCHOR_DIR", str(VAR_DIR / "publication"))
CELERY_BEAT_SCHEDULE["audit-anchor"] = {
    "task": "pki.tasks.audit_anchor_task",
    "schedule": env_int("AUDIT_ANCHOR_INTERVAL_SECONDS", 3600),
    "options": {"queue": "signing"},
}
CELERY_BEAT_SCHEDULE["pki-publish"] = {
    "task": "pki.tasks.pki_publish_task",
    "schedule": env_int("PKI_PUBLISH_TICK_SECONDS", 300),
    "options": {"queue": "signing"},
}
# --- end PKI

# --- Personalization: card master keys, stations, PIN mailers
# Card master keys (SCP03 issuer, DESFire incl. transport masters `desfire-transport.vN`,
# admin/unblock), as the PKI key backends are configured: options per backend, secrets named by
# their environment variable, never their value.
_CARD_KEY_STORE_OPTIONS: dict[str, dict[str, object]] = {
    "software": {
        "location": env_str("CARD_KEY_STORE_DIR", str(VAR_DIR / "card-keys")),
        "passphrase_env": "PKI_KEY_PASSPHRASE",
    },
    "pkcs11": {
        "module": env_str("CARD_KEY_STORE_PKCS11_MODULE", env_str("PKI_PKCS11_MODULE", ""))
        or None,  # None: standard locations
        "token_label": env_str(
            "CARD_KEY_STORE_PKCS11_TOKEN_LABEL", env_str("PKI_PKCS11_TOKEN_LABEL", "cps-pki")
        ),
        "pin_env": "PKI_PKCS11_PIN",
        "pool_size": env_int("CARD_KEY_STORE_PKCS11_POOL_SIZE", 2),
    },
}
_card_key_store_backend = env_str("CARD_KEY_STORE_BACKEND", "software")
CARD_KEY_STORE: dict[str, object] = {
    "BACKEND": _card_key_store_backend,  # an unknown name is refused when the store is opened
    "OPTIONS": _CARD_KEY_STORE_OPTIONS.get(_card_key_store_backend, {}),
}
# Create the published test masters on demand: off unless a variant turns it on (the embedded
# default and the tests do; production refuses it).
CARD_KEYS_TEST_PROVISIONING = False
# DESFire transport keys of vendor batches: version 0 is the factory key (zeros); version N is
# the master `desfire-transport.vN` in the card key store (manage.py card_keys_import_transport).
# Cards still on the public factory key are refused (stock registration and personalization)
# unless this allows them; production refuses to start with it (ADR 0018).
DESFIRE_FACTORY_TRANSPORT_KEY = env_bool("DESFIRE_FACTORY_TRANSPORT_KEY", False)
STATION_LEASE_SECONDS = env_int("STATION_LEASE_SECONDS", 60)
# Celery beat puts jobs whose lease ran out back in the queue (claims do it as well).
STATION_LEASE_SWEEP_SECONDS = env_int("STATION_LEASE_SWEEP_SECONDS", 30)
CELERY_IMPORTS: tuple[str, ...] = ("cms.personalization.tasks",)
CELERY_BEAT_SCHEDULE["personalization-lease-sweep"] = {
    "task": "cms.personalization.tasks.jobs_lease_sweep_task",
    "schedule": float(STATION_LEASE_SWEEP_SECONDS),
    "options": {"queue": "default"},
}
PERSONALIZATION_EMAIL_DOMAIN = env_str("PERSONALIZATION_EMAIL_DOMAIN", "cps.mssante.invalid")

# --- PIN mailers (cms.mailers): the agency's letterhead, the envelope window, print runs
MAILER_AGENCY_NAME = env_str(
    "MAILER_AGENCY_NAME", "Agence des cartes de professionnels de santé (démonstration)"
)
MAILER_AGENCY_LOGO = env_str("MAILER_AGENCY_LOGO", "")  # PNG or JPEG; empty: a plain mark
MAILER_RETURN_ADDRESS = env_list(
    "MAILER_RETURN_ADDRESS", ["Service des cartes CPS", "TSA 00000", "75700 PARIS CEDEX 07"]
)  # comma-separated lines
MAILER_PLACE = env_str("MAILER_PLACE", "Paris")  # "Paris, le 5 décembre 2026"
# 01 99 00 xx xx: the range the French numbering plan keeps for fiction. Set the real one.
MAILER_HELPDESK_PHONE = env_str("MAILER_HELPDESK_PHONE", "01 99 00 12 34")
# The window on the flat A4 sheet, millimetres: distance from the right edge, from the top,
# width, height. Default: the common French DL / C5-6 window, 100 x 45 mm, 20 mm from the right,
# 50 mm from the top. It must end above the first fold (99 mm), where the codes' panel starts.
MAILER_WINDOW_MM = [
    float(v) for v in env_list("MAILER_WINDOW_MM", ["20", "50", "100", "45"])
]  # right, top, width, height
MAILER_LANGUAGES = env_list("MAILER_LANGUAGES", ["fr", "en"])  # first one on top
MAILER_RUN_MAX_LETTERS = env_int("MAILER_RUN_MAX_LETTERS", 2000)
# Beat gathers each site's unprinted mailers into a print run once a day, at this hour.
MAILER_RUN_HOUR = env_int("MAILER_RUN_HOUR", 5)
CELERY_IMPORTS = (*CELERY_IMPORTS, "cms.mailers.tasks")

# --- after issuance (cms.services.expiry): the daily expiry sweep; windows per product may
# override these ("renewal": {"certificate_window_days", "card_window_days"} in its definition)
RENEWAL_CERTIFICATE_WINDOW_DAYS = env_int("RENEWAL_CERTIFICATE_WINDOW_DAYS", 90)
RENEWAL_CARD_WINDOW_DAYS = env_int("RENEWAL_CARD_WINDOW_DAYS", 120)
EXPIRY_SWEEP_BATCH = env_int("EXPIRY_SWEEP_BATCH", 500)
EXPIRY_SWEEP_HOUR = env_int("EXPIRY_SWEEP_HOUR", 2)
BULK_REVOCATION_BATCH = env_int("BULK_REVOCATION_BATCH", 500)
CELERY_IMPORTS = (*CELERY_IMPORTS, "cms.tasks")
CELERY_BEAT_SCHEDULE["bulk-revocations-resume"] = {
    "task": "cms.tasks.bulk_revocations_resume_task",
    "schedule": 600.0,
    "options": {"queue": "default"},
}
CELERY_BEAT_SCHEDULE["expiry-sweep"] = {
    "task": "cms.tasks.expiry_sweep_task",
    "schedule": crontab(hour=EXPIRY_SWEEP_HOUR, minute=30),
    "options": {"queue": "default"},
}
CELERY_BEAT_SCHEDULE["mailers-print-runs"] = {
    "task": "cms.mailers.tasks.print_runs_gather_task",
    "schedule": crontab(hour=MAILER_RUN_HOUR, minute=0),
    "options": {"queue": "default"},
}

# --- CPS3 → CPS4 migration (cps3): the hand-over grace and the daily round.
CPS3_HANDOVER_GRACE_DAYS = env_int("CPS3_HANDOVER_GRACE_DAYS", 30)
CPS3_WAVE_HOUR = env_int("CPS3_WAVE_HOUR", 6)
CELERY_IMPORTS = (*CELERY_IMPORTS, "cps3.tasks")
CELERY_BEAT_SCHEDULE["cps3-daily"] = {
    "task": "cps3.tasks.migration_daily_task",
    "schedule": crontab(hour=CPS3_WAVE_HOUR, minute=30),
    "options": {"queue": "default"},
}
CELERY_BEAT_SCHEDULE["cps3-summaries"] = {
    "task": "cps3.tasks.migration_summaries_task",
    "schedule": 300.0,
    "options": {"queue": "default"},
}

# --- Contactless relying parties: status service and signed deny list (ADR 0021)
CONTACTLESS_STATUS_MAX_AGE = env_int("CONTACTLESS_STATUS_MAX_AGE", 30)  # Cache-Control, seconds
CONTACTLESS_STATUS_RATE = env_str("CONTACTLESS_STATUS_RATE", "600/min")  # per client address
# A new list version at least this often (even without changes), each valid until next_update.
CONTACTLESS_DENY_LIST_REFRESH_SECONDS = env_int("CONTACTLESS_DENY_LIST_REFRESH_SECONDS", 3600)
CONTACTLESS_DENY_LIST_NEXT_UPDATE_SECONDS = env_int(
    "CONTACTLESS_DENY_LIST_NEXT_UPDATE_SECONDS", 2 * 3600
)
CELERY_IMPORTS = (*CELERY_IMPORTS, "cms.contactless.tasks")
CELERY_TASK_ROUTES["cms.contactless.tasks.*"] = {"queue": "signing"}
CELERY_BEAT_SCHEDULE["contactless-deny-list"] = {
    "task": "cms.contactless.tasks.deny_list_publish_task",
    "schedule": float(env_int("CONTACTLESS_DENY_LIST_TICK_SECONDS", 60)),
    "options": {"queue": "signing"},
}

# --- Helpdesk: PIN unblock (cms.services.helpdesk, docs/helpdesk.md)
# Offline unblock responses per card and per agent in a sliding window; from the
# DUAL_CONTROL_AFTER-th response of a card in the window on, a second agent approves (0: never).
HELPDESK_UNBLOCK_WINDOW_HOURS = env_int("HELPDESK_UNBLOCK_WINDOW_HOURS", 24)
HELPDESK_UNBLOCK_CARD_LIMIT = env_int("HELPDESK_UNBLOCK_CARD_LIMIT", 3)
HELPDESK_UNBLOCK_AGENT_LIMIT = env_int("HELPDESK_UNBLOCK_AGENT_LIMIT", 30)
HELPDESK_UNBLOCK_DUAL_CONTROL_AFTER = env_int("HELPDESK_UNBLOCK_DUAL_CONTROL_AFTER", 1)
# How the agency lets agents check a holder's identity (a subset of cms.services.helpdesk's).
HELPDESK_IDENTITY_METHODS = env_list(
    "HELPDESK_IDENTITY_METHODS", ["callback", "registry_questions", "in_person_document"]
)
# New codes (a new PIN and PUK written at a station, cms.services.new_codes): a second agent
# approves every request first when true.
HELPDESK_NEW_CODES_DUAL_CONTROL = env_bool("HELPDESK_NEW_CODES_DUAL_CONTROL", False)
# --- end helpdesk
