from __future__ import annotations

from tests.cms.conftest import (  # noqa: F401 - fixtures re-exported
    authority,
    caller_for,
    cps3,
    cps4,
    holder_key,
    link_certificates,
    system,
)
from tests.pki.conftest import pki_software, software_key_dir  # noqa: F401
