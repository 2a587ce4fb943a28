"""The API's contract holds against the running server, for every role.

``schemathesis run --checks all`` over ``/api/schema/`` against gunicorn serving the test database,
with a token of each role in turn: no 500, no status or content type the schema does not document,
no schema-valid request refused, no schema-violating request accepted, every answer conforming.

Deterministic and bounded in ``make test``: each role runs the operations it may call (and the
public ones); that every other operation refuses it with a documented 401/403 is checked on the
schema below. ``CONTRACT_EXAMPLES=200 CONTRACT_SEED=<n>`` explores more: every operation for every
role, with a seed instead of the deterministic mode.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.roles import Role

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = os.environ.get("CONTRACT_EXAMPLES", "5")
SEED = os.environ.get("CONTRACT_SEED")
UUID_SAMPLE = "00000000-0000-0000-0000-000000000001"


def _operations() -> list[tuple[str, dict[str, Any], type]]:
    """(operation id, operation, view class) of every operation of the generated schema."""
    from django.urls import resolve
    from drf_spectacular.generators import SchemaGenerator

    found = []
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        view_class = None
        for sample in (UUID_SAMPLE, "1"):
            match = resolve(re.sub(r"\{\w+\}", sample, path))
            view_class = getattr(match.func, "view_class", None)
            if view_class is not None:
                break
        assert view_class is not None, path
        found += [(op["operationId"], op, view_class) for op in operations.values()]
    return found


def _callable_by(role: Role) -> list[str]:
    return [
        operation_id
        for operation_id, _, view in _operations()
        if getattr(view, "public", False) or role in getattr(view, "roles", ())
    ]


def test_every_protected_operation_documents_its_refusals() -> None:
    """What the bounded run leaves out (a role calling what it may not) answers 401 or 403 with
    the envelope, and the schema says so for every such operation."""
    for operation_id, operation, view in _operations():
        if getattr(view, "public", False):
            continue
        for status in ("401", "403"):
            body = operation["responses"][status]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/Error"}, (operation_id, status)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def server(transactional_db: Any, tmp_path: Path) -> Iterator[str]:
    """gunicorn on a free local port, serving this test's PostgreSQL database."""
    from django.db import connection

    db = connection.settings_dict
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            assert process.poll() is None, f"gunicorn died:\n{log_path.read_text()}"
            try:
                with urllib.request.urlopen(f"{base}/api/schema/?format=json", timeout=60):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):  # busy machine
                time.sleep(0.25)
        else:
            pytest.fail(f"gunicorn did not answer:\n{log_path.read_text()}")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _token_for(role: Role) -> str:
    """A real credential of ``role``: a person's API token, or an enrolled station's."""
    from django.contrib.auth.models import Group, User

    from cms.callers import Caller
    from cms.models import SitePool
    from cms.personalization.stations import station_create, station_enroll
    from core.actors import Actor
    from core.dual_control import act_approve
    from core.tokens import api_token_create

    def person(role: Role, suffix: str = "") -> Any:
        user = User.objects.create_user(username=f"contract-{role.value}{suffix}")
        user.groups.set([Group.objects.get_or_create(name=role.value)[0]])
        return user

    if role != Role.STATION:
        return api_token_create(user=person(role), actor=Actor.system("contract"))[1]
    officer = person(Role.SECURITY_OFFICER)
    SitePool.objects.create(code="contract-site", name="Contract site")
    issued = station_create(
        site_code="contract-site", name="contract station", caller=Caller.for_user(officer)
    )
    act_approve(act_id=issued.approval_id, user=person(Role.SECURITY_OFFICER, "second"))
    return station_enroll(code=issued.code).token


@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.value)
def test_schemathesis_finds_no_failure(server: str, role: Role, tmp_path: Path) -> None:
    token = _token_for(role)
    generation = ["--seed", SEED] if SEED else ["--generation-deterministic"]
    selection = [] if SEED else [f"--include-operation-id={name}" for name in _callable_by(role)]
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file",
            str(ROOT / "schemathesis.toml"),
            "--no-color",
            "run",
            f"{server}/api/schema/?format=json",
            "--url",
            server,
            "--header",
            f"Authorization: Token {token}",
            "--checks",
            "all",
            "--max-examples",
            EXAMPLES,
            *generation,
            *selection,
            "--workers",
            "1",
        ],
        cwd=tmp_path,  # its own working files stay out of the tree
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-20000:]
    assert " generated, " in output, output[-3000:]
