"""What import-linter cannot see: the benchmarks (a folder of scripts, not a package) use the
packages of the tree, never the test suite."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_benchmarks_import_nothing_of_the_tests():
    scripts = sorted(BENCH.rglob("*.py"))
    assert len(scripts) >= 5
    offending = {
        str(path.relative_to(BENCH)): sorted(
            n for n in _imported(path) if n.split(".")[0] == "tests"
        )
        for path in scripts
    }
    assert {path: names for path, names in offending.items() if names} == {}
