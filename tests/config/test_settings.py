"""Start-up refuses bad configuration with one clear line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import parse_database_url

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": "x" * 50,
    "DATABASE_URL": "postgresql://cms@127.0.0.1:5432/cms",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "PKI_PUBLIC_BASE_URL": "https://pki.example.org",
    "DJANGO_ALLOWED_HOSTS": "cms.example.org",
    "PKI_KEY_PASSPHRASE": "correct horse battery staple",
    "PERSONALIZATION_EMAIL_DOMAIN": "mssante.example.org",
    "CACHE_URL": "redis://127.0.0.1:6379/1",
}


def run_manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "PKI_"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_postgres_url_is_split_into_django_settings():
    db = parse_database_url("postgresql://u:p%40ss@db.example:6432/cms?sslmode=require")
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "u",
        "p@ss",
        "db.example",
        "6432",
        "cms",
    )
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_a_unix_socket_directory_goes_in_the_host_option():
    """The private cluster of `make run` without root listens on a socket under var/pg only."""
    db = parse_database_url("postgresql://cms@/cps_cms_local?host=/srv/cms/var/pg")
    assert (db["HOST"], db["USER"], db["NAME"]) == ("", "cms", "cps_cms_local")
    assert db["OPTIONS"] == {"host": "/srv/cms/var/pg"}


@pytest.mark.parametrize(
    "url,fragment",
    [
        ("mysql://x/y", "unsupported scheme"),
        ("postgresql://host:99999/x", "not a valid URL"),
        ("postgresql://host:5432/", "needs a database name"),
        ("sqlite:///var/cms.sqlite3", "unsupported scheme 'sqlite'"),
    ],
)
def test_bad_database_urls_name_the_variable(url, fragment):
    with pytest.raises(ImproperlyConfigured, match=f"DATABASE_URL.*{fragment}"):
        parse_database_url(url)


def test_bad_database_url_stops_start_up_with_one_line():
    result = run_manage({"DATABASE_URL": "oracle://nowhere/db"}, "check")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "configuration error: DATABASE_URL has an unsupported scheme 'oracle': use postgresql:// "
        "(PostgreSQL is the only engine)"
    ]


def test_production_settings_start_with_their_secrets():
    result = run_manage(PRODUCTION_ENV, "check", "--deploy", "--fail-level", "ERROR")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "missing",
    [
        "DJANGO_SECRET_KEY",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "PKI_PUBLIC_BASE_URL",
        "DJANGO_ALLOWED_HOSTS",
    ],
)
def test_production_refuses_to_start_without_each_secret(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = run_manage(env, "check")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: ") and missing in lines[0]


@pytest.mark.parametrize("settings_module", ["local", "production", "test"])
def test_every_variant_refuses_sqlite(settings_module):
    """One engine everywhere: the embedded default too (it once ran on SQLite and diverged)."""
    env = {
        **PRODUCTION_ENV,
        "DJANGO_SETTINGS_MODULE": f"config.settings.{settings_module}",
        "DATABASE_URL": "sqlite:///var/x.sqlite3",
    }
    result = run_manage(env, "check")
    assert result.returncode != 0
    assert "unsupported scheme 'sqlite'" in result.stderr


def test_celery_queues_and_eager_mode():
    from django.conf import settings

    from config.celery import app

    assert {q.name for q in app.conf.task_queues} == {"default", "signing"}
    assert app.conf.task_acks_late is True and app.conf.worker_prefetch_multiplier == 1
    assert settings.CELERY_TASK_ALWAYS_EAGER is True  # set explicitly by config.settings.test
    from config.settings import base

    assert base.CELERY_TASK_ALWAYS_EAGER is False


def test_the_card_key_store_options_follow_its_backend():
    code = (
        "from django.conf import settings; "
        "from pki.keys.symmetric import card_key_store_create; "
        "store = card_key_store_create('card-keys', settings.CARD_KEY_STORE); "
        "print(type(store).__name__, sorted(settings.CARD_KEY_STORE['OPTIONS']))"
    )
    env = {"CARD_KEY_STORE_BACKEND": "pkcs11", "CARD_KEY_STORE_PKCS11_TOKEN_LABEL": "cards"}
    result = run_manage(env, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "Pkcs11CardKeyStore ['module', 'pin_env', 'pool_size', 'token_label']"
    )


def test_production_refuses_to_start_without_the_card_key_store_pin():
    env = {**PRODUCTION_ENV, "CARD_KEY_STORE_BACKEND": "pkcs11"}
    result = run_manage(env, "check")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "configuration error: PKI_PKCS11_PIN must be set in the environment "
        "(the HSM user PIN of the card key store)"
    ]
    with_pin = run_manage({**env, "PKI_PKCS11_PIN": "1234"}, "check", "--deploy")
    assert with_pin.returncode == 0, with_pin.stderr


def test_production_refuses_an_unknown_card_key_store_backend():
    result = run_manage({**PRODUCTION_ENV, "CARD_KEY_STORE_BACKEND": "vault"}, "check")
    assert result.stderr.strip().splitlines() == [
        "configuration error: CARD_KEY_STORE_BACKEND must be software or pkcs11, not 'vault'"
    ]


def test_no_transport_key_is_configured_in_clear():
    from django.conf import settings

    assert not hasattr(settings, "CARD_TRANSPORT_KEYS")


def test_production_refuses_the_factory_desfire_transport_key():
    result = run_manage({**PRODUCTION_ENV, "DESFIRE_FACTORY_TRANSPORT_KEY": "1"}, "check")
    assert result.returncode != 0
    assert "DESFIRE_FACTORY_TRANSPORT_KEY must stay off in production" in result.stderr
    assert run_manage(PRODUCTION_ENV, "check").returncode == 0


def _production_values(code: str, env: dict[str, str] | None = None) -> str:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "PKI_"))
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT, env={**clean, **(env or PRODUCTION_ENV)}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("module", ["config.wsgi", "config.asgi"])
def test_the_server_entry_points_default_to_the_production_settings(module):
    """Without DJANGO_SETTINGS_MODULE a server gets production (DEBUG off, its own secret key),
    never the local settings with their public fallback key."""
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = _production_values(
        f"import {module}\nfrom django.conf import settings\n"
        "print(settings.SETTINGS_MODULE, settings.DEBUG)",
        env,
    )
    assert out.splitlines()[-1] == "config.settings.production False"


def test_production_has_hsts_ssl_redirect_and_an_idle_session_timeout():
    out = _production_values(
        "import django; django.setup()\n"
        "from django.conf import settings as s\n"
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0, s.SESSION_SAVE_EVERY_REQUEST,"
        " s.SESSION_COOKIE_AGE)"
    )
    assert out.splitlines()[-1] == "True True True 1800"


def test_production_redirects_to_https_but_not_the_pki_and_ocsp_paths():
    """/pki/* and /ocsp are for relying parties on plain HTTP; the rest goes to HTTPS."""
    out = _production_values(
        "import django; django.setup()\n"
        "from django.test import RequestFactory\n"
        "from django.middleware.security import SecurityMiddleware\n"
        "mw = SecurityMiddleware(lambda r: None)\n"
        "f = RequestFactory()\n"
        "for path in ('/console/', '/api/v1/holders', '/pki/ca/x.crl', '/ocsp', '/metrics'):\n"
        "    r = mw.process_request(f.get(path, HTTP_HOST='cms.example.org'))\n"
        "    print(path, r.status_code if r else 'served')\n"
    )
    assert out.splitlines()[-5:] == [
        "/console/ 301", "/api/v1/holders 301", "/pki/ca/x.crl served", "/ocsp served",
        "/metrics served",
    ]  # fmt: skip
