"""The console's French catalogue is complete: every string marked in the console's templates and
Python modules has a French translation (none empty, none fuzzy) and the committed ``.mo`` is
compiled from the committed ``.po``. ``makemessages`` runs over a copy of the console, so the
catalogue in the repository is never touched."""

from __future__ import annotations

import gettext
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

CONSOLE = Path(settings.BASE_DIR) / "console"
CATALOGUE = CONSOLE / "locale" / "fr" / "LC_MESSAGES"


def msgids(po: Path, *options: str) -> list[str]:
    """The msgids msgattrib selects with the options (the header left out)."""
    out = subprocess.run(
        ["msgattrib", "--no-wrap", "--no-location", *options, str(po)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    ids = [line[len("msgid ") :] for line in out.splitlines() if line.startswith("msgid ")]
    return [i for i in ids if i != '""']


def catalog(mo: Path) -> dict[object, str]:
    with mo.open("rb") as f:
        entries = dict(gettext.GNUTranslations(f)._catalog)  # type: ignore[attr-defined]
    entries.pop("", None)  # the header: dates change on every run
    return entries


@pytest.fixture(scope="module")
def fresh_po(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The console's catalogue as makemessages makes it now, from a copy of the console."""
    copy = tmp_path_factory.mktemp("catalogue") / "console"
    shutil.copytree(CONSOLE, copy, ignore=shutil.ignore_patterns("static", "__pycache__", "*.mo"))
    mp = pytest.MonkeyPatch()
    mp.chdir(copy)
    try:
        with override_settings(LOCALE_PATHS=[]):
            call_command("makemessages", locale=["fr"], no_obsolete=True, verbosity=0)
    finally:
        mp.undo()
    return copy / "locale" / "fr" / "LC_MESSAGES" / "django.po"


def test_every_console_string_has_a_french_translation(fresh_po: Path) -> None:
    assert msgids(fresh_po, "--untranslated") == [], "run makemessages and translate these"
    assert msgids(fresh_po, "--only-fuzzy") == [], "check these translations, drop '#, fuzzy'"


def test_the_committed_catalogue_is_current_and_compiled(fresh_po: Path, tmp_path: Path) -> None:
    subprocess.run(
        ["msgfmt", "--check", "-o", str(tmp_path / "fresh.mo"), str(fresh_po)], check=True
    )
    committed = CATALOGUE / "django.po"
    subprocess.run(["msgfmt", "--check", "-o", str(tmp_path / "po.mo"), str(committed)], check=True)
    assert catalog(tmp_path / "fresh.mo") == catalog(tmp_path / "po.mo"), "run makemessages"
    assert catalog(CATALOGUE / "django.mo") == catalog(tmp_path / "po.mo"), "run compilemessages"
