"""The end-to-end tests reuse the fixtures of the simulator, PKI and station tests."""

from tests.cardsim.conftest import key_pool, pcscd  # noqa: F401
from tests.cms.personalization.conftest import card_key_dir, card_keys, scene  # noqa: F401
from tests.pki.conftest import pki_software, software_key_dir  # noqa: F401
