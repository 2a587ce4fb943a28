"""The secret mask of every log record."""

from __future__ import annotations

import logging

import pytest

from ops.logging import MASK, MaskSecrets


def test_secret_values_from_the_environment_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PKI_KEY_PASSPHRASE", "correct horse battery staple")
    monkeypatch.setenv("DATABASE_URL", "postgresql://cms:db-password-123@db:5432/cms")
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "failed with %s on %s",
        ("correct horse battery staple", "postgresql://cms:db-password-123@db:5432/cms"), None,
    )  # fmt: skip
    assert MaskSecrets().filter(record)
    assert record.getMessage() == f"failed with {MASK} on postgresql://cms:{MASK}@db:5432/cms"


def test_a_record_without_secrets_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PKI_KEY_PASSPHRASE", "correct horse battery staple")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "card %s issued", ("42",), None)
    MaskSecrets().filter(record)
    assert (record.msg, record.args) == ("card %s issued", ("42",))


def test_a_secret_quoted_in_a_traceback_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PKI_KEY_PASSPHRASE", "correct horse battery staple")
    try:
        raise RuntimeError("cannot unlock with 'correct horse battery staple'")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "unlock failed", (), sys.exc_info()
        )
    MaskSecrets().filter(record)
    line = logging.Formatter().format(record)
    assert "correct horse battery staple" not in line and MASK in line
