"""The profile table is checked when Django starts (a system check), not only by tests."""

from __future__ import annotations

import dataclasses

from django.core import checks

from pki.domain import profiles


def test_a_broken_profile_table_is_a_critical_start_up_error(monkeypatch):
    broken = dataclasses.replace(profiles.PROFILES["ocsp_responder"], extended_key_usages=())
    monkeypatch.setitem(profiles.PROFILES, "ocsp_responder", broken)
    messages = checks.run_checks(tags=[checks.Tags.security])
    assert [m.id for m in messages if m.level >= checks.CRITICAL] == ["pki.E001"]


def test_the_shipped_table_passes():
    assert not [m for m in checks.run_checks(tags=[checks.Tags.security]) if m.id == "pki.E001"]
