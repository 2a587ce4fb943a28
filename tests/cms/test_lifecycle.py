"""The declared lifecycle table (pure): its shape, checks and the generated docs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cms import lifecycle
from cms.choices import CardStatus, RevokeReason
from core.role_names import Role
from pki.domain.reasons import REVOKE_REASONS, RevocationReason

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "lifecycle.md"


def test_the_table_imports_without_django_settings():
    """Pure means importable with no settings: the table names roles, not Django groups."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        "from django.conf import settings\n"
        "from cms import lifecycle\n"
        "assert not settings.configured\n"
        "print(len(lifecycle.TRANSITIONS))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(lifecycle.TRANSITIONS)


def test_every_state_is_reachable_from_stock_and_destroyed_is_final():
    reached, frontier = {CardStatus.IN_STOCK}, [CardStatus.IN_STOCK]
    while frontier:
        status = frontier.pop()
        for t in lifecycle.allowed_from(status):
            if t.target not in reached:
                reached.add(t.target)
                frontier.append(t.target)
    assert reached == set(CardStatus)
    assert lifecycle.allowed_from(CardStatus.DESTROYED) == []


def test_the_design_edges_are_exactly_the_table():
    edges = {(s, t.target) for t in lifecycle.TRANSITIONS for s in t.sources}
    live = {CardStatus.ISSUED, CardStatus.ACTIVE, CardStatus.SUSPENDED}
    expected = {
        (CardStatus.IN_STOCK, CardStatus.ALLOCATED),
        (CardStatus.ALLOCATED, CardStatus.PERSONALIZING),
        (CardStatus.PERSONALIZING, CardStatus.ISSUED),
        (CardStatus.ISSUED, CardStatus.ACTIVE),
        (CardStatus.ACTIVE, CardStatus.SUSPENDED),
        (CardStatus.SUSPENDED, CardStatus.ACTIVE),
        (CardStatus.PERSONALIZING, CardStatus.IN_STOCK),
        (CardStatus.PERSONALIZING, CardStatus.SPOILED),
        *{(s, CardStatus.REVOKED) for s in live},
        *{(s, CardStatus.EXPIRED) for s in live},
        *{
            (s, CardStatus.DESTROYED)
            for s in (CardStatus.REVOKED, CardStatus.EXPIRED, CardStatus.SPOILED)
        },
    }
    assert edges == expected


def test_revocation_reasons_map_as_the_design_says_and_are_valid_crl_reasons():
    assert set(lifecycle.REVOCATION_REASON) == set(RevokeReason)
    assert lifecycle.REVOCATION_REASON[RevokeReason.LOST] is RevocationReason.KEY_COMPROMISE
    assert lifecycle.REVOCATION_REASON[RevokeReason.DAMAGED] is RevocationReason.SUPERSEDED
    assert (
        lifecycle.REVOCATION_REASON[RevokeReason.DECEASED]
        is RevocationReason.CESSATION_OF_OPERATION
    )
    assert set(lifecycle.REVOCATION_REASON.values()) | {lifecycle.UNFINISHED_CARD_REASON} <= set(
        REVOKE_REASONS
    )


def test_check_refuses_a_wrong_role_before_looking_at_the_state():
    with pytest.raises(lifecycle.RoleRefused):
        lifecycle.check("suspend", CardStatus.IN_STOCK, roles=frozenset({Role.AUDITOR}))


def test_check_refuses_a_move_the_table_does_not_have():
    with pytest.raises(lifecycle.InvalidTransition) as info:
        lifecycle.check("suspend", CardStatus.ISSUED, roles=frozenset({Role.HELPDESK_AGENT}))
    assert info.value.status is CardStatus.ISSUED


def test_revoke_needs_a_reason():
    with pytest.raises(lifecycle.ReasonRequired):
        lifecycle.check("revoke", CardStatus.ACTIVE, roles=frozenset({Role.HELPDESK_AGENT}))
    t = lifecycle.check(
        "revoke",
        CardStatus.ACTIVE,
        roles=frozenset({Role.HELPDESK_AGENT}),
        reason=RevokeReason.STOLEN,
    )
    assert (
        lifecycle.revocation_reason_for(t, RevokeReason.STOLEN) is RevocationReason.KEY_COMPROMISE
    )


def test_system_callers_only_reach_transitions_marked_system():
    assert lifecycle.check("expire", CardStatus.ACTIVE, roles=frozenset(), system=True)
    with pytest.raises(lifecycle.RoleRefused):
        lifecycle.check("activate", CardStatus.ISSUED, roles=frozenset(), system=True)


def test_unknown_transition():
    with pytest.raises(lifecycle.UnknownTransition):
        lifecycle.transition_named("teleport")


def test_request_transitions_cover_every_request_state():
    from cms.choices import RequestStatus

    touched = {s for r in lifecycle.REQUEST_TRANSITIONS for s in (*r.sources, r.target)}
    assert touched == set(RequestStatus)


def test_docs_lifecycle_md_is_the_generated_table():
    assert DOCS.read_text(encoding="utf-8") == lifecycle.markdown_table(), (
        "docs/lifecycle.md is stale: run `python manage.py lifecycle_table > docs/lifecycle.md`"
    )
