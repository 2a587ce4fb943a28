"""Driving ``scripts/topology.sh`` (the production topology on one host) from the tests and the
benchmarks: start and stop, its settings, manage.py and Python run inside the topology's
environment. No Django here: it drives processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "topology.sh"


def _read_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            name, value = line.split("=", 1)
            values[name] = value
    return values


@dataclass
class Topology:
    """One topology under ``directory`` (TOPOLOGY_DIR)."""

    directory: Path
    knobs: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
        env.update(self.knobs, TOPOLOGY_DIR=str(self.directory), PY=sys.executable)
        return env

    def script(self, *args: str, check: bool = True, timeout: float = 300) -> str:
        done = subprocess.run(  # noqa: S603 - our own script, fixed argv
            ["bash", str(SCRIPT), *args],  # noqa: S607
            cwd=REPO, env=self._env(), capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(f"topology.sh {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    def up(self) -> None:
        self.script("up", timeout=600)
        self.settings = _read_env(self.directory / "topology.env")

    def down(self) -> None:
        self.script("down")

    def status(self) -> dict[str, str]:
        lines = self.script("status").splitlines()
        return {line.split()[0]: line.split()[1] for line in lines}

    def processes(self) -> list[int]:
        """Every process of this topology, children included: those started with its settings
        (its directory in their environment) or naming its directories on their command line."""
        marks = [str(self.directory).encode()]
        if self.settings.get("TOPOLOGY_PG_DATA"):
            marks.append(self.settings["TOPOLOGY_PG_DATA"].encode())
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                seen = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
            except OSError:
                continue
            if any(mark in seen for mark in marks):
                found.append(int(proc.name))
        return found

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.settings['TOPOLOGY_HTTPS_PORT']}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.settings['TOPOLOGY_HTTP_PORT']}"

    @property
    def origin(self) -> str:
        """gunicorn itself, behind the front (to tell the origin's answer from the cache's)."""
        return f"http://127.0.0.1:{self.settings['TOPOLOGY_WEB_PORT']}"

    @property
    def tls_ca(self) -> str:
        return self.settings["TOPOLOGY_TLS_CA"]

    def process_env(self) -> dict[str, str]:
        """The environment of the topology's own processes (web, workers, manage.py)."""
        return {**self._env(), **self.settings}

    def python(self, code: str, timeout: float = 300) -> Any:
        """Run ``code`` in ``manage.py shell`` of the topology; it prints one JSON value."""
        done = subprocess.run(  # noqa: S603 - our interpreter, our manage.py
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=REPO, env=self.process_env(), capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise AssertionError(f"topology python failed: {done.stdout}{done.stderr}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def manage(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our interpreter, our manage.py
            [sys.executable, "manage.py", *args],
            cwd=REPO, env=self.process_env(), capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip

    def psql(self, sql: str) -> str:
        port = self.settings["TOPOLOGY_PG_PORT"]
        done = subprocess.run(  # noqa: S603 - the topology's own database
            ["psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "cms",  # noqa: S607
             "-AtXq", "-c", sql],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return done.stdout.strip()
