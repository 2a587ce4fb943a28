"""Production: refuses to start without its secrets, PostgreSQL and a broker."""

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_required, env_str
from config.settings.base import *  # noqa: F403
from config.settings.base import CARD_KEY_STORE, LOGGING, PKI_DEFAULT_KEY_BACKEND

DEBUG = False
SECRET_KEY = env_required(
    "DJANGO_SECRET_KEY", what="a long random string; Django signs sessions with it"
)
env_required("DATABASE_URL", what="postgresql://user:password@host:5432/name")
CELERY_BROKER_URL = env_required("CELERY_BROKER_URL", what="redis:// or amqp:// URL of the broker")
PKI_PUBLIC_BASE_URL = env_required(
    "PKI_PUBLIC_BASE_URL", what="the public https base URL written into certificates"
).rstrip("/")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must list the host names this server answers")
# The secret that unlocks CA keys: the software backend's passphrase or the HSM user PIN.
if PKI_DEFAULT_KEY_BACKEND == "software":
    env_required("PKI_KEY_PASSPHRASE", what="the passphrase of the encrypted CA keys")
elif PKI_DEFAULT_KEY_BACKEND == "pkcs11":
    env_required("PKI_PKCS11_PIN", what="the HSM user PIN")
# The secret that unlocks the card master keys (their backend may differ from the CA keys').
_card_key_options = CARD_KEY_STORE["OPTIONS"]
assert isinstance(_card_key_options, dict)
if CARD_KEY_STORE["BACKEND"] == "software":
    env_required(
        str(_card_key_options["passphrase_env"]), what="the passphrase of the card key store"
    )
elif CARD_KEY_STORE["BACKEND"] == "pkcs11":
    env_required(str(_card_key_options["pin_env"]), what="the HSM user PIN of the card key store")
else:
    raise ImproperlyConfigured(
        f"CARD_KEY_STORE_BACKEND must be software or pkcs11, not {CARD_KEY_STORE['BACKEND']!r}"
    )
CELERY_TASK_ALWAYS_EAGER = False
# Card master keys come from a key ceremony, never from the published test values.
CARD_KEYS_TEST_PROVISIONING = False
# No personalization session may open with the public factory PICC key (ADR 0018).
if DESFIRE_FACTORY_TRANSPORT_KEY:  # noqa: F405
    raise ImproperlyConfigured(
        "DESFIRE_FACTORY_TRANSPORT_KEY must stay off in production: cards on the factory PICC "
        "key (transport key version 0) would open their session with a public key"
    )
PERSONALIZATION_EMAIL_DOMAIN = env_required(
    "PERSONALIZATION_EMAIL_DOMAIN", what="the mail domain of holders' signature certificates"
)
# Rate-limit counters (API and console sign-in) shared by every web process.
_cache = env_required("CACHE_URL", what="redis://host:6379/1, shared by the web processes")
if not _cache.startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured("CACHE_URL must be a redis:// or rediss:// URL in production")
# JSON log lines for the collector (LOG_FORMAT=plain to read them by eye).
LOG_FORMAT = env_str("LOG_FORMAT", "json")
LOGGING["handlers"]["console"]["formatter"] = "json" if LOG_FORMAT == "json" else "plain"  # type: ignore[index]
# /metrics: no network by default (behind the front every client has the proxy's address); a
# scraper presents METRICS_TOKEN, or METRICS_ALLOWED_NETWORKS names the monitoring hosts.
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", [])
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Stations: the token goes with the station's own client certificate, verified by the front
# (deploy/nginx), whose address (as gunicorn sees it) is the only one believed: on this host.
STATION_CERTIFICATE_BINDING = env_bool("STATION_CERTIFICATE_BINDING", True)
CMS_TRUSTED_PROXIES = env_list("CMS_TRUSTED_PROXIES", ["127.0.0.1", "::1"])
# HTTPS only, for the console and the API. /pki/* and /ocsp stay on plain HTTP (relying parties
# fetch them so: the front serves them on its HTTP port) and /metrics is scraped on each web
# process directly: not redirected.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^pki/", r"^ocsp(/|$)", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
# A console session ends after this long without a request (each request pushes it back), and
# when the browser closes.
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", 30 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
