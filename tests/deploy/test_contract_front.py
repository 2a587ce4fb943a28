"""The API's contract holds against the production topology (issue 12, item 6): ``schemathesis
run --checks all`` over ``/api/schema/`` through nginx on TLS, with a token of each role in turn,
the station's on mutual TLS with its own certificate. The same bounded, deterministic run as
``tests/api/test_contract.py`` (which talks to gunicorn alone), so the front's own answers (TLS,
the station location, body limits, the HTTPS redirect and HSTS of production) are under the
contract too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.roles import Role
from tests.api.test_contract import EXAMPLES, ROOT, SEED, _callable_by
from tests.deploy.support import Topology, station

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # make test-slow


@pytest.fixture(autouse=True)
def _throttles_forgotten(topology: Topology):
    """Schemathesis hammers every endpoint, enrollment included: the rate-limit counters it
    leaves in the topology's cache must not refuse the next test's station (the topology is
    shared by the session)."""
    yield
    topology.python("from django.core.cache import cache\ncache.clear()\nprint('true')")


PERSON_TOKEN = """
import json
from django.contrib.auth.models import Group, User
from core.actors import Actor
from core.tokens import api_token_create

user, _ = User.objects.get_or_create(username=f"contract-front-{ROLE}")
user.groups.set([Group.objects.get_or_create(name=ROLE)[0]])
print(json.dumps(api_token_create(user=user, actor=Actor.system("contract"))[1]))
"""

STATION_CODE = """
import json
from cms.models import SitePool
from cms.personalization.stations import station_create
from demo import setup

pool = SitePool.objects.filter(code="contract-front").first() or setup.site("contract-front")
print(json.dumps(station_create(site_code=pool.code, name="contract front",
                                caller=setup.SYSTEM).code))
"""


def _credentials(topology: Topology, role: Role, tmp_path: Path) -> tuple[str, list[str]]:
    """The role's token, and the schemathesis options of its client certificate (a station)."""
    if role != Role.STATION:
        token: str = topology.python(f"ROLE = {role.value!r}\n" + PERSON_TOKEN)
        return token, []
    code = topology.python(STATION_CODE)
    path = tmp_path / "station" / "credential.json"
    path.parent.mkdir()
    enrolled = station(topology, path, "enroll", "--cms", topology.https, "--code", code,
                       "--certificate")  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
    credential = json.loads(path.read_text())
    certificate = path.with_name("station-cert.pem")
    certificate.write_text(credential["certificate_pem"])
    options = ["--request-cert", str(certificate), "--request-cert-key", credential["key_path"]]
    return credential["token"], options


@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.value)
def test_schemathesis_through_the_front_finds_no_failure(
    topology: Topology, role: Role, tmp_path: Path
) -> None:
    token, certificate = _credentials(topology, role, tmp_path)
    generation = ["--seed", SEED] if SEED else ["--generation-deterministic"]
    selection = [] if SEED else [f"--include-operation-id={name}" for name in _callable_by(role)]
    front = topology.https
    run = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")),
         "--config-file", str(ROOT / "schemathesis.toml"), "--no-color",
         "run", f"{front}/api/schema/?format=json", "--url", front,
         "--tls-verify", topology.tls_ca, *certificate,
         "--header", f"Authorization: Token {token}",
         "--checks", "all", "--max-examples", EXAMPLES, *generation, *selection,
         "--workers", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-20000:]
    assert " generated, " in output, output[-3000:]
