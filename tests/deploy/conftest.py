"""The production topology (scripts/topology.sh) for the tests of this package: started once per
session with a short OCSP cache ceiling, stopped at the end, and checked to leave no process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cardsim.conftest import pcscd  # noqa: F401 - the shared pcscd fixture
from tests.deploy.support import Topology

# A revocation must show through the cache within this many seconds (PKI_OCSP_CACHE_MAX_AGE).
OCSP_CEILING = 3
# A task delivered and never acknowledged goes back to its queue after this many seconds
# (CELERY_VISIBILITY_TIMEOUT): short, so that the broker-restart test sees it within the test.
VISIBILITY_TIMEOUT = 15


@pytest.fixture(scope="session")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    top = Topology(
        tmp_path_factory.mktemp("topology"),
        # every publication task finds a full CRL due (the kill -9 test sends its own)
        knobs={
            "TOPOLOGY_OCSP_MAX_AGE": str(OCSP_CEILING),
            "TOPOLOGY_FULL_CRL_INTERVAL": "1",
            "TOPOLOGY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        },
    )
    try:
        top.up()
        yield top
    finally:
        running = top.processes()
        top.down()
        left = top.processes()
        assert not left, f"topology.sh down left processes {left} (of {running})"
