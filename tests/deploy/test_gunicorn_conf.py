"""deploy/gunicorn.conf.py: worker recycling (ADR 0033), the collector's tuning (ADR 0035) and the
benchmarks' per-request CPU log, on a real gunicorn serving a WSGI application that answers at
once (no database, no front)."""

from __future__ import annotations

import os
import runpy
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ops.topology import REPO

CONF = REPO / "deploy" / "gunicorn.conf.py"

APP = """
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
"""


def test_a_worker_is_recycled_rarely_with_jitter(monkeypatch) -> None:
    monkeypatch.delenv("GUNICORN_MAX_REQUESTS", raising=False)
    conf = runpy.run_path(str(CONF))
    assert conf["max_requests"] == 100_000
    assert conf["max_requests_jitter"] == 10_000
    assert "_cpu_log_install" not in conf  # no CPU log unless asked for
    monkeypatch.setenv("GUNICORN_MAX_REQUESTS", "0")  # 0: never recycled
    assert runpy.run_path(str(CONF))["max_requests_jitter"] == 0


GC_APP = """
import gc

def application(environ, start_response):
    body = f"{gc.get_freeze_count() > 0} {gc.get_threshold()[0]}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def _served(tmp_path: Path, app: str, paths: list[str], **env: str) -> list[bytes]:
    """What a real gunicorn on deploy/gunicorn.conf.py answers to GET ``paths``, one by one."""
    (tmp_path / "app.py").write_text(app)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(CONF), "app:application"],
        cwd=tmp_path, env={**os.environ, **env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    answers = []
    try:
        for _ in range(100):  # until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                time.sleep(0.1)
        for path in paths:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                answers.append(answer.read())
    finally:
        server.terminate()
        server.wait(timeout=30)
    return answers


def test_the_worker_freezes_what_it_loaded_and_collects_less_often(tmp_path: Path) -> None:
    assert _served(tmp_path, GC_APP, ["/"]) == [b"True 10000"]
    assert _served(tmp_path, GC_APP, ["/"], GUNICORN_GC_FREEZE="0") == [b"False 700"]


def test_the_cpu_log_has_a_line_per_request(tmp_path: Path) -> None:
    log = tmp_path / "cpu"
    log.mkdir()
    answers = _served(tmp_path, APP, ["/first", "/second"], GUNICORN_CPU_LOG_DIR=str(log))
    assert answers == [b"ok", b"ok"]
    lines = [line.split("\t") for f in log.glob("cpu-*.tsv") for line in f.read_text().splitlines()]
    assert [line[0] for line in lines] == ["/first", "/second"]
    for _path, request, application, main_loop in lines:
        assert 0 <= float(application) <= float(request)
        assert float(main_loop) > 0
