"""docs/roles.md holds the role tables the code enforces (``manage.py roles_table``)."""

from __future__ import annotations

from pathlib import Path

from api.roles_table import BEGIN, END, markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "roles.md"


def test_docs_roles_md_holds_the_generated_tables():
    text = DOC.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] + "\n" == markdown(), (
        "docs/roles.md is stale: replace its generated part with `python manage.py roles_table`"
    )


def test_the_tables_say_what_the_issue_asked():
    table = markdown()
    for step in ("allocate", "personalize", "issue", "wipe", "spoil"):
        assert f"| `{step}` | · | · | · | · | · | ✔ |" in table
    assert "renewal, replacement" in table
    assert "`auditor` with `station`" in table
