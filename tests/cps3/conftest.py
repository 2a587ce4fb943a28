from __future__ import annotations

from tests.cms.conftest import authority, holder_key  # noqa: F401 - fixtures re-exported
from tests.pki.conftest import pki_software, software_key_dir  # noqa: F401
