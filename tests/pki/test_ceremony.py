"""Issue 11 §4: a real CA ceremony (``pki_init`` on a hierarchy that is not a test one) needs two
authenticated security officers; the embedded test hierarchy stays unattended."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from core.models import AuditEvent
from pki.models import CertificateAuthority
from tests.pki.conftest import PASSPHRASE_ENV, TEST_HIERARCHY, _backends

PASSWORD = "correct horse battery staple"  # tests.conftest.make_user


@pytest.fixture
def real_hierarchy(
    db: None,
    settings: Any,
    software_key_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Path:
    monkeypatch.setenv(PASSPHRASE_ENV, "test-passphrase-not-secret")
    settings.PKI_KEY_BACKENDS = _backends(software_key_dir, None)
    settings.PKI_PUBLIC_BASE_URL = "http://pki.cps-cms.test"
    text = TEST_HIERARCHY.read_text().replace("test = true", "test = false", 1)
    assert "test = false" in text
    path = tmp_path / "production.toml"
    path.write_text(text)
    return path


def _init(config: Path, *officers: str, passwords: str = "") -> str:
    out = io.StringIO()
    args = [arg for name in officers for arg in ("--officer", name)]
    call_command(
        "pki_init", "--config", str(config), "--backend", "software", *args,
        stdout=out, stdin=io.StringIO(passwords),
    )  # fmt: skip
    return out.getvalue()


def test_one_person_cannot_run_a_real_ceremony(real_hierarchy: Path, make_user: Any) -> None:
    make_user("security_officer", username="alice")
    make_user("issuance_operator", username="mallory")
    attempts = [
        ((), ""),  # nobody named: the attack of issue 11 §4
        (("alice",), f"{PASSWORD}\n"),  # one officer
        (("alice", "alice"), f"{PASSWORD}\n{PASSWORD}\n"),  # the same one twice
        (("alice", "mallory"), f"{PASSWORD}\n{PASSWORD}\n"),  # not an officer
        (("alice", "bob"), f"{PASSWORD}\nguess\n"),  # unknown account
    ]
    for officers, passwords in attempts:
        with pytest.raises(CommandError):
            _init(real_hierarchy, *officers, passwords=passwords)
    assert not CertificateAuthority.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="pki.").exists()


def test_two_authenticated_officers_run_a_real_ceremony(
    real_hierarchy: Path, make_user: Any
) -> None:
    make_user("security_officer", username="alice")
    make_user("security_officer", username="bob")
    with pytest.raises(CommandError, match="Authentication failed for bob"):
        _init(real_hierarchy, "alice", "bob", passwords=f"{PASSWORD}\nwrong\n")
    assert not CertificateAuthority.objects.exists()

    out = _init(real_hierarchy, "alice", "bob", passwords=f"{PASSWORD}\n{PASSWORD}\n")
    assert "created ACR-FO-TEST" in out
    assert CertificateAuthority.objects.count() == 3
    events = AuditEvent.objects.filter(
        action__in=["pki.authority_create", "pki.ocsp_responder_create"]
    )
    assert events.count() == 5
    for event in events:
        assert (event.actor_kind, event.actor_label) == ("user", "alice")
        assert event.details["officers"] == ["alice", "bob"]


def test_the_embedded_test_hierarchy_stays_unattended(pki_software: str) -> None:
    """make run, the demo and the tests: ``test = true``, no officer asked."""
    assert CertificateAuthority.objects.count() == 3
    out = io.StringIO()
    call_command("pki_init", config=str(TEST_HIERARCHY), backend="software", stdout=out)
    assert "nothing changed" in out.getvalue()
