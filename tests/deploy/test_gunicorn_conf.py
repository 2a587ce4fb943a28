"""deploy/gunicorn.conf.py: worker recycling (ADR 0033) and the benchmarks' per-request CPU log,
on a real gunicorn serving a WSGI application that answers at once (no database, no front)."""

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
    assert "post_worker_init" not in conf  # no CPU log unless asked for
    monkeypatch.setenv("GUNICORN_MAX_REQUESTS", "0")  # 0: never recycled
    assert runpy.run_path(str(CONF))["max_requests_jitter"] == 0


def test_the_cpu_log_has_a_line_per_request(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    log = tmp_path / "cpu"
    log.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "GUNICORN_CPU_LOG_DIR": str(log), "GUNICORN_BIND": f"127.0.0.1:{port}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(CONF), "app:application"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/first", timeout=2) as answer:
                    assert answer.read() == b"ok"
                break
            except OSError:
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/second", timeout=2) as answer:
            assert answer.read() == b"ok"
    finally:
        server.terminate()
        server.wait(timeout=30)
    lines = [line.split("\t") for f in log.glob("cpu-*.tsv") for line in f.read_text().splitlines()]
    assert [line[0] for line in lines] == ["/first", "/second"]
    for _path, request, application, main_loop in lines:
        assert 0 <= float(application) <= float(request)
        assert float(main_loop) > 0
