from tests.cms.personalization.conftest import card_key_dir, card_keys  # noqa: F401
