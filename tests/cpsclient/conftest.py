"""The verifier kit's tests issue a real CPS4 (in-process station relay) and read it back."""

from tests.cardsim.conftest import key_pool, pcscd  # noqa: F401
from tests.cms.personalization.conftest import (  # noqa: F401
    card_key_dir,
    card_keys,
    scene,
    virtual_card,
)
from tests.pki.conftest import pki_software, software_key_dir  # noqa: F401
