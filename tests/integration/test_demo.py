"""``manage.py demo`` on the embedded default: a fresh PostgreSQL database, software keys, eager
tasks, in a subprocess as ``make run`` runs it. Each run issues and activates one more CPS4."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.integration.conftest import clean_environment
from tests.integration.conftest import manage as run_manage

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def embedded(
    tmp_path_factory: pytest.TempPathFactory, scratch_database: Callable[[], str]
) -> tuple[str, Callable[..., str]]:
    var = tmp_path_factory.mktemp("var")
    database = scratch_database()
    env = clean_environment()
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL=database,
        CMS_VAR_DIR=str(var),
        PKI_KEY_PASSPHRASE="embedded-demo-test-passphrase",
    )

    def manage(*args: str) -> str:
        return run_manage(env, *args)

    manage("migrate", "--no-input")
    manage("pki_init")
    return database, manage


def _active_cards(database: str) -> dict[str, int]:
    """Chip serial -> number of valid certificates, for the ACTIVE cards."""
    with psycopg.connect(database) as db:
        rows = db.execute(
            "SELECT c.chip_serial, COUNT(cc.id) FROM cms_card c "
            "JOIN cms_cardcertificate cc ON cc.card_id = c.id "
            "JOIN pki_certificate p ON p.id = cc.certificate_id "
            "WHERE c.status = 'ACTIVE' AND p.status = 'valid' GROUP BY c.chip_serial"
        ).fetchall()
    return {serial: count for serial, count in rows}


def _issued(output: str) -> str:
    found = re.search(r"CPS4 card (\d{20}) is ACTIVE for holder .* \((8\d{11})\)", output)
    assert found is not None, output
    return found.group(1)


def test_each_run_issues_and_activates_one_more_card(
    embedded: tuple[str, Callable[..., str]],
) -> None:
    database, manage = embedded

    first = manage("demo")
    serial = _issued(first)
    assert re.search(r"^path: (pcscd|in process)", first, re.M)
    assert "api/v1/cards/" in first and "/console/" in first and "auth/token" in first
    assert "password: " in first
    assert _active_cards(database) == {serial: 2}

    second = manage("demo", "--path", "inprocess")
    other = _issued(second)
    assert other != serial
    assert "path: in process" in second
    assert "password: " not in second  # the account exists: its password is not shown again
    assert _active_cards(database) == {serial: 2, other: 2}
    holders = re.findall(r"for holder .* \((8\d{11})\)", first + second)
    assert len(set(holders)) == 2


def test_stop_station_without_a_station_says_so(
    embedded: tuple[str, Callable[..., str]],
) -> None:
    _, manage = embedded
    assert "no demo station was running" in manage("demo", "--stop-station")
