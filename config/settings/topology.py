"""The production topology assembled on one machine for tests and benchmarks
(scripts/topology.sh): production settings, with the published test card master keys, because
its cards are virtual cards made with them (card-protocols.md §3). Never on a real host."""

from config.settings.production import *  # noqa: F403

CARD_KEYS_TEST_PROVISIONING = True
