"""Production settings log JSON lines, and a run that handles passwords, API tokens and the
metrics token, with the key passphrase and the secret key in its environment, logs none of them."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import clean_environment, manage, server

pytestmark = pytest.mark.integration


def _call(url: str, *, data: dict[str, str] | None = None, token: str = "") -> tuple[int, bytes]:
    request = urllib.request.Request(
        url,
        data=json.dumps(data).encode() if data is not None else None,
        headers={"Content-Type": "application/json"},
    )
    if token:
        request.add_header("Authorization", token)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_production_logs_are_json_without_secrets(
    tmp_path: Path, scratch_database: Callable[[], str]
) -> None:
    secret_key = secrets.token_urlsafe(48)
    passphrase = secrets.token_urlsafe(24)
    metrics_token = secrets.token_urlsafe(24)
    env = clean_environment("LOG_", "METRICS_", "CACHE_")
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=secret_key,
        DATABASE_URL=scratch_database(),
        CELERY_BROKER_URL="redis://127.0.0.1:6379/13",
        CACHE_URL="redis://127.0.0.1:6379/13",
        PKI_PUBLIC_BASE_URL="https://pki.example.org",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        PKI_KEY_PASSPHRASE=passphrase,
        PERSONALIZATION_EMAIL_DOMAIN="mssante.example.org",
        METRICS_TOKEN=metrics_token,
        LOG_LEVEL="DEBUG",
        CMS_VAR_DIR=str(tmp_path / "var"),
        DJANGO_SECURE_SSL_REDIRECT="false",  # plain HTTP to gunicorn: no TLS front here
    )
    manage(env, "migrate", "--no-input")
    password = manage(env, "bootstrap_admin").split("password: ", 1)[1].split()[0]
    log = tmp_path / "server.log"
    with server(env, log=log) as url:
        status, body = _call(
            f"{url}/api/v1/auth/token", data={"username": "admin", "password": password}
        )
        assert status in (200, 201), body
        token = json.loads(body)["token"]
        assert _call(f"{url}/api/v1/me", token=f"Token {token}")[0] == 200
        assert _call(f"{url}/api/v1/me", token=f"Token {token[:-4]}abcd")[0] == 401
        wrong = {"username": "admin", "password": password[:-3] + "xyz"}
        assert _call(f"{url}/api/v1/auth/token", data=wrong)[0] in (400, 401)
        assert _call(f"{url}/metrics", token=f"Bearer {metrics_token}")[0] == 200
        assert _call(f"{url}/metrics")[0] == 404  # no network is allowed by default
        assert _call(f"{url}/ocsp", data={"not": "ocsp"})[0] == 400

    output = log.read_text()
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) >= 7  # the requests above, at least
    for line in lines:
        record = json.loads(line)  # every line is one JSON object
        assert {"time", "level", "logger", "message"} <= record.keys(), line
    for secret in (secret_key, passphrase, metrics_token, password, token):
        assert secret not in output
