"""Settings shared by every variant. Everything that differs between deployments comes from the
environment; ``local`` (embedded default), ``test`` and ``production`` only set what they must."""

from __future__ import annotations

from pathlib import Path

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
]

MIDDLEWARE = [
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

DATABASES = {
    "default": parse_database_url(
        env_str("DATABASE_URL", "sqlite:///var/cms.sqlite3"), base_dir=BASE_DIR
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
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Proxies in front of the server: the client address for rate limits is taken this many hops
    # back in X-Forwarded-For; 0 ignores the header (no proxy), so clients cannot forge it.
    "NUM_PROXIES": env_int("DJANGO_NUM_PROXIES", 0),
}

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
            "core.roles": ("Role",),
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
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "audit-chain-check": {"task": "core.tasks.audit_chain_check_task", "schedule": 3600.0},
}

# --- Public URLs written into certificates (CRL distribution points, AIA, OCSP).
PKI_PUBLIC_BASE_URL = env_str("PKI_PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

API_PAGE_SIZE_MAX = env_int("API_PAGE_SIZE_MAX", 500)

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
CELERY_TASK_ROUTES = {
    **globals().get("CELERY_TASK_ROUTES", {}),
    "pki.tasks.*": {"queue": "signing"},
}
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
# The longest an HTTP cache (the nginx front, a relying party) may keep an OCSP answer, whatever
# its nextUpdate: the promised delay before a revocation is seen through a cache.
PKI_OCSP_CACHE_MAX_AGE = env_int("PKI_OCSP_CACHE_MAX_AGE", 60)
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
STATION_LEASE_SECONDS = env_int("STATION_LEASE_SECONDS", 60)
# Celery beat puts jobs whose lease ran out back in the queue (claims do it as well).
STATION_LEASE_SWEEP_SECONDS = env_int("STATION_LEASE_SWEEP_SECONDS", 30)
CELERY_IMPORTS = (*globals().get("CELERY_IMPORTS", ()), "cms.personalization.tasks")
CELERY_BEAT_SCHEDULE["personalization-lease-sweep"] = {
    "task": "cms.personalization.tasks.jobs_lease_sweep_task",
    "schedule": float(STATION_LEASE_SWEEP_SECONDS),
    "options": {"queue": "default"},
}
PERSONALIZATION_EMAIL_DOMAIN = env_str("PERSONALIZATION_EMAIL_DOMAIN", "cps.mssante.invalid")
