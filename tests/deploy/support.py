"""Driving ``scripts/topology.sh`` from tests: start and stop, its settings, manage.py and Python
run inside the topology's environment, and the station as a real process through nginx."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ops.topology import REPO, SCRIPT, Topology

__all__ = ["REPO", "SCRIPT", "Topology", "scene", "station"]

SCENE = """
import json
from django.contrib.auth.models import Group, User
from cms.callers import Caller
from cms.models import Product, SitePool
from demo import setup
from cms.personalization.stations import station_create
from core.actors import Actor
from core.tokens import api_token_create

product = setup.products_and_keys()
pool = SitePool.objects.filter(code="topology-site").first() or setup.site("topology-site")
operator, _ = User.objects.get_or_create(username="topology-operator")
operator.groups.add(Group.objects.get_or_create(name="issuance_operator")[0])
setup.blank_card_register(product=product, pool=pool, chip_serial=SERIAL, desfire_uid=UID)
request = setup.request_queued(
    holder=setup.holder_demo(NATIONAL_ID), product=product, pool=pool,
    operator=Caller.for_user(operator),
)
codes = [station_create(site_code=pool.code, name=n, caller=setup.SYSTEM).code for n in NAMES]
print(json.dumps({"request": str(request.pk), "codes": codes}))
"""


def scene(
    topology: Topology, *, serial: str, uid: str, national_id: str, stations: list[str]
) -> dict[str, Any]:
    """A blank card in stock, a queued request for it, and new stations' enrollment codes."""
    code = (
        f"SERIAL = {serial!r}\nUID = {uid!r}\nNATIONAL_ID = {national_id!r}\n"
        f"NAMES = {stations!r}\n" + SCENE
    )
    result: dict[str, Any] = topology.python(code)
    return result


def station(
    topology: Topology, credential: Path, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m personalization_station`` talking to the front (https, the test CA)."""
    return subprocess.run(
        [sys.executable, "-m", "personalization_station", "--credential", str(credential),
         "--ca-file", topology.tls_ca, *args],
        cwd=credential.parent, env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
