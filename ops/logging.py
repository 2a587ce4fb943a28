"""Logging: JSON lines in production (one object per record, for the log collector), and a
filter that masks the configured secrets wherever they would appear in a record."""

from __future__ import annotations

import logging
import os

# Variables whose values are secrets; their values never reach a log line.
SECRET_VARIABLES = (
    "DJANGO_SECRET_KEY",
    "PKI_KEY_PASSPHRASE",
    "PKI_PKCS11_PIN",
    "METRICS_TOKEN",
    "CELERY_BROKER_URL",
    "DATABASE_URL",
    "CACHE_URL",
)
MASK = "[secret]"


def _secret_values() -> list[str]:
    values = []
    for name in SECRET_VARIABLES:
        value = os.environ.get(name, "")
        # URLs: only their password is secret
        if "://" in value and "@" in value:
            credentials = value.split("://", 1)[1].split("@", 1)[0]
            value = credentials.split(":", 1)[1] if ":" in credentials else ""
        if len(value) >= 8:
            values.append(value)
    return values


class MaskSecrets(logging.Filter):
    """Replace every configured secret value in the message and its arguments by a mask."""

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self.secrets = _secret_values()

    def _mask(self, text: str) -> str:
        for value in self.secrets:
            text = text.replace(value, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        masked = self._mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # a traceback can quote a secret too (a connection string in an exception message):
            # format it here, masked; formatters reuse exc_text
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._mask(record.exc_text)
        return True
