"""The embedded default (`make run`): PostgreSQL (scripts/ensure-local-db.sh), software keys,
tasks run in-process."""

from config.env import env_bool
from config.settings.base import *  # noqa: F403

DEBUG = env_bool("DJANGO_DEBUG", True)
# Explicit: there is no broker in the embedded default, tasks run inside the web process.
CELERY_TASK_ALWAYS_EAGER = True
# Published test card master keys (card-protocols.md §3), created on demand.
CARD_KEYS_TEST_PROVISIONING = True
